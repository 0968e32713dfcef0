"""Broker: an ElastiCache (Valkey or Redis) replication group for Celery that survives the loss of a zone:
automatic failover, Multi-AZ, TLS in transit, an auth token, encryption at rest with our key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import kms
from components.config import BrokerConfig

PORT = 6379
# ElastiCache accepts 16 to 128 printable characters; letters and digits keep the broker URL free of escapes.
AUTH_TOKEN_LENGTH = 64


def node_zones(zones: Sequence[str], nodes: int) -> list[str]:
    """The zone of each node: round-robin, so the primary and its first replica never share a zone."""
    return [zones[i % len(zones)] for i in range(nodes)]


@dataclass
class BrokerArgs:
    config: BrokerConfig
    zones: Sequence[str]
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_id: pulumi.Input[str]
    region: str
    partition: str
    account_id: str
    protect: bool


class Broker(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: int
    auth_token: pulumi.Output[str]  # a Pulumi secret

    def __init__(self, name: str, args: BrokerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Broker", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        account = kms.Account(args.partition, args.account_id)
        elasticache = kms.service_host("elasticache", args.region)
        key = kms.customer_managed_key(name, "Celery broker encryption at rest", self, args.protect, account, [
            # Through ElastiCache only: it encrypts the nodes' disks and backups for whoever creates the group.
            kms.through_service("AccountUsesThroughElastiCache", account, elasticache, kms.STORAGE_ACTIONS),
            kms.grants_through_service("AccountGrantsThroughElastiCache", account, elasticache)])
        subnet_group = aws.elasticache.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids),
                                                   description="Private subnets of every zone", opts=child)
        security_group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=args.vpc_id, description="Celery broker: from cluster nodes only", opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster", security_group_id=security_group.id, referenced_security_group_id=args.client_security_group_id,
            ip_protocol="tcp", from_port=PORT, to_port=PORT, description="Celery broker from the EKS cluster", opts=child)
        token = random.RandomPassword(f"{name}-auth-token", length=AUTH_TOKEN_LENGTH, special=False, opts=child)

        group = aws.elasticache.ReplicationGroup(
            f"{name}-group",
            # Named, not generated: a generated suffix would push long environment names past AWS's 40 characters.
            replication_group_id=name,
            description="Airflow Celery broker",
            engine=cfg.engine,
            engine_version=cfg.engine_version,
            node_type=cfg.node_type,
            num_cache_clusters=cfg.nodes,
            preferred_cache_cluster_azs=node_zones(args.zones, cfg.nodes),
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            port=PORT,
            subnet_group_name=subnet_group.name,
            security_group_ids=[security_group.id],
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            transit_encryption_enabled=True,
            auth_token=token.result,
            auth_token_update_strategy="ROTATE",
            opts=child,
        )
        self.address = group.primary_endpoint_address
        self.port = PORT
        self.auth_token = token.result
        self.register_outputs({"address": self.address})
