"""Metadata DB: RDS PostgreSQL in the private subnets of every zone, reachable only from the cluster's nodes,
encrypted, TLS-only, watched by Performance Insights and enhanced monitoring, its slow statements logged to a log group
of its own.

The instance's identifier is fixed, not generated: RDS creates `/aws/rds/instance/<identifier>/<log>` itself
(unencrypted, never expiring) as soon as the new instance logs, before its create returns, so the exported log groups
can only be ours if they are declared first, under a name known before the instance exists. A stack whose instance
still has its generated identifier renames it once, in place (RDS reboots it and its endpoint changes); the log groups
RDS made for the old identifier are left behind, unmanaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import iam, kms
from components.config import DatabaseConfig
from components.log_groups import encrypted_log_groups

PORT = 5432
DATABASE_NAME = "airflow"
MASTER_USERNAME = "airflow_admin"
# Letters and digits only: the password goes into connection URLs, where symbols need escaping.
PASSWORD_LENGTH = 40
# The logs RDS exports to CloudWatch: the server log (connections, errors, slow statements) and major-upgrade output.
EXPORTED_LOGS = ["postgresql", "upgrade"]


def parameter_group_family(engine_version: str) -> str:
    return f"postgres{engine_version}"


def exported_log_group_name(identifier: str, log: str) -> str:
    return f"/aws/rds/instance/{identifier}/{log}"


@dataclass
class MetadataDatabaseArgs:
    config: DatabaseConfig
    partition: str
    region: str
    account_id: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_id: pulumi.Input[str]
    protect: bool


class MetadataDatabase(pulumi.ComponentResource):
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    identifier: pulumi.Output[str]
    password: pulumi.Output[str]  # a Pulumi secret
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: MetadataDatabaseArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:MetadataDatabase", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        account = kms.Account(args.partition, args.account_id)
        rds = kms.service_host("rds", args.region)
        key = kms.customer_managed_key(name, "Airflow metadata DB storage, snapshots and Performance Insights", self, args.protect,
                                       account, [
            # Through RDS only: storage, snapshots and backups for whoever creates or restores the instance, and
            # Performance Insights for whoever reads it (its API's calls go through rds.<region> too).
            kms.through_service("AccountUsesThroughRds", account, rds, kms.STORAGE_ACTIONS),
            kms.grants_through_service("AccountGrantsThroughRds", account, rds)])

        subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=list(args.subnet_ids),
                                           description="Private subnets of every zone", opts=child)
        # No egress rules: the database never opens connections, so the default allow-all egress is dropped.
        security_group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=args.vpc_id, description="Airflow metadata DB: PostgreSQL from cluster nodes only",
                                               opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster", security_group_id=security_group.id, referenced_security_group_id=args.client_security_group_id,
            ip_protocol="tcp", from_port=PORT, to_port=PORT, description="PostgreSQL from the EKS cluster", opts=child)

        parameters = aws.rds.ParameterGroup(
            f"{name}-params", family=parameter_group_family(cfg.engine_version), description="Airflow metadata DB: TLS only",
            parameters=[{"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"},
                        # Dynamic: a change applies without a reboot.
                        {"name": "log_min_duration_statement", "value": str(cfg.slow_statement_ms), "apply_method": "immediate"}],
            opts=child)
        identifier = f"{name}-postgres"
        _, log_groups = encrypted_log_groups(
            f"{name}-logs", "Airflow metadata DB exported logs", {log: exported_log_group_name(identifier, log) for log in EXPORTED_LOGS},
            cfg.log_retention_days, args.partition, args.region, args.account_id, self, args.protect)

        monitoring_role = aws.iam.Role(f"{name}-monitoring", assume_role_policy=iam.service_trust("monitoring.rds.amazonaws.com", self),
                                       opts=child)
        monitoring_policies = iam.attach_managed_policies(
            monitoring_role, args.partition, ["service-role/AmazonRDSEnhancedMonitoringRole"], self, f"{name}-monitoring")

        password = random.RandomPassword(f"{name}-password", length=PASSWORD_LENGTH, special=False, opts=child)

        instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=identifier,
            engine="postgres",
            # A major version only: RDS applies minor versions in the maintenance window.
            engine_version=cfg.engine_version,
            auto_minor_version_upgrade=True,
            instance_class=cfg.instance_class,
            db_name=DATABASE_NAME,
            username=MASTER_USERNAME,
            password=password.result,
            port=PORT,
            allocated_storage=cfg.allocated_storage_gib,
            max_allocated_storage=cfg.max_allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            multi_az=cfg.multi_az,
            backup_retention_period=cfg.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=cfg.deletion_protection,
            skip_final_snapshot=not cfg.deletion_protection,
            final_snapshot_identifier=f"{name}-final" if cfg.deletion_protection else None,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            monitoring_interval=cfg.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role.arn,
            enabled_cloudwatch_logs_exports=EXPORTED_LOGS,
            iam_database_authentication_enabled=True,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[*monitoring_policies, *log_groups.values()]),
        )
        self.address, self.port, self.identifier = instance.address, instance.port, instance.identifier
        self.password = password.result
        self.security_group_id = security_group.id
        self.register_outputs({"address": self.address, "port": self.port, "identifier": self.identifier})
