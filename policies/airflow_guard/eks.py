"""EKS: no API endpoint open to the world, secrets encrypted with our key, every control-plane log, node groups
across zones."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .model import Resource, Stack, known, policy

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
WORLD = ("0.0.0.0/0", "::/0")


@policy("eks-endpoint-not-public", types=(CLUSTER,), severity="critical", checkov=("CKV_AWS_38", "CKV_AWS_39"),
        description="The Kubernetes API endpoint is not open to the whole internet.",
        remediation="Keep cluster.endpointPublicAccess false (the default), or list the CIDRs that may reach it in "
                    "cluster.publicAccessCidrs; AWS opens a public endpoint without CIDRs to 0.0.0.0/0.")
def endpoint_not_public(cluster: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    # AWS's defaults: the public endpoint is on unless turned off, and open to everyone unless CIDRs are given.
    if cluster.get("vpcConfig.endpointPublicAccess", True) is False:
        return
    cidrs = as_list(cluster.get("vpcConfig.publicAccessCidrs")) or ["0.0.0.0/0"]
    open_to = [c for c in cidrs if c in WORLD]
    if open_to:
        yield f"cluster {cluster.name}'s public endpoint is open to {', '.join(open_to)}"


@policy("eks-secrets-encryption", types=(CLUSTER,), severity="high", checkov=("CKV_AWS_58",),
        description="Kubernetes Secrets are envelope-encrypted with a customer-managed KMS key.",
        remediation="Set encryption_config with resources ['secrets'] and provider.key_arn (Cluster does, with the cluster "
                    "key); it cannot be removed once set.")
def secrets_encryption(cluster: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if "secrets" not in as_list(cluster.get("encryptionConfig.resources")) or not cluster.get("encryptionConfig.provider.keyArn"):
        yield f"cluster {cluster.name} does not encrypt Secrets with a KMS key"


@policy("eks-control-plane-logging", types=(CLUSTER,), severity="medium", checkov=("CKV_AWS_37",),
        description="The cluster sends every control-plane log type to CloudWatch.",
        remediation="Set enabled_cluster_log_types to api, audit, authenticator, controllerManager and scheduler.")
def control_plane_logging(cluster: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    enabled = as_list(cluster.props.get("enabledClusterLogTypes"))
    missing = [t for t in LOG_TYPES if t not in enabled]
    if missing:
        yield f"cluster {cluster.name} does not log {', '.join(missing)}"


@policy("eks-node-groups-span-zones", types=(NODE_GROUP,), needs_stack=True, severity="high",
        description="Each node group places nodes in enough availability zones to survive losing one.",
        remediation="Give the node group private subnets in at least the configured number of zones (the stack's `zones` "
                    "key; prod requires 3).",
        config_schema={"minimumZones": {"type": "integer", "minimum": 1, "maximum": 6, "default": 2,
                                        "description": "Fewest zones a node group's subnets must span."}})
def node_groups_span_zones(group: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    subnets = stack.sources(group, "subnetIds")
    if not subnets:
        return  # subnets of an existing VPC: their zones are not in this stack (the config rules check `zones`)
    zones = sorted({known(s.props.get("availabilityZone")) or known(s.props.get("availabilityZoneId")) for s in subnets})
    if len(zones) < config["minimumZones"]:
        yield f"node group {group.name} spans {len(zones)} zone{'s' if len(zones) != 1 else ''} ({', '.join(map(str, zones))}), fewer than {config['minimumZones']}"
