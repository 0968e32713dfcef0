"""Karpenter's EC2NodeClasses and NodePools, built from the typed config (pure functions, no Pulumi).

One node class and one NodePool per pool: the Celery workers' and the KubernetesPodOperator task pods'. Each pool's
nodes carry the label its pods select and a taint only its pods tolerate, so nothing else lands on them and they land
nowhere else.

A node Karpenter removes (drift, expiry, consolidation) is drained; pods with `karpenter.sh/do-not-disrupt` (workers,
task pods) hold the drain until the NodePool's `terminationGracePeriod` minus their own grace period, then are deleted
and get their grace period. So the grace of a pool is at least the workers' (1.5 × the longest task): the longest task
finishes, and no node waits for ever (Karpenter 1.14's NodePool CRD: the grace "takes precedence over a Pod's
terminationGracePeriodSeconds, and bypasses any blocked PDBs or the karpenter.sh/do-not-disrupt annotation").
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import pulumi

from components.config.karpenter import KarpenterConfig, NodePoolConfig
from components.names import MINIMUM_NODE_CPUS, POOL_LABEL

NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.k8s.aws/v1"
DISCOVERY_TAG = "karpenter.sh/discovery"
POOLS = ("workers", "tasks")
# At most 64 vCPUs, and no bare metal: Karpenter counts a node it is still launching at the largest type it may become,
# so huge types use up a pool's limits early, and metal boots slowly.
MAXIMUM_NODE_CPUS = 64
# What the quiet windows hold back; expiry and emptiness still disrupt (an expired node must go, an empty one costs).
QUIET_REASONS = ["Drifted", "Underutilized"]


def pool_config(cfg: KarpenterConfig, pool: str) -> NodePoolConfig:
    return getattr(cfg.node_pools, pool)


def taint(pool: str) -> dict[str, str]:
    return {"key": POOL_LABEL, "value": pool, "effect": "NoSchedule"}


def toleration(pool: str) -> dict[str, str]:
    """What a pod of the pool tolerates: exactly the pool's taint."""
    return {"key": POOL_LABEL, "operator": "Equal", "value": pool, "effect": "NoSchedule"}


# Beyond the workers' grace by default: Karpenter's own steps (cordon, its batching of deletions) take time too.
GRACE_MARGIN_MINUTES = 5


def termination_grace_minutes(pool: NodePoolConfig, worker_grace_seconds: int) -> int:
    return pool.termination_grace_minutes or math.ceil(worker_grace_seconds / 60) + GRACE_MARGIN_MINUTES


def node_class(pool: str, cfg: KarpenterConfig, cluster_name: str, node_role: pulumi.Input[str], volume_key_arn: pulumi.Input[str],
               tags: dict[str, str]) -> dict[str, Any]:
    """The EC2NodeClass of one pool: the pinned AL2023 release, IMDSv2 with one hop, an encrypted gp3 root volume."""
    discovery = [{"tags": {DISCOVERY_TAG: cluster_name}}]
    return {
        "apiVersion": NODE_CLASS_API, "kind": "EC2NodeClass", "metadata": {"name": pool},
        "spec": {
            "role": node_role,
            "amiSelectorTerms": [{"alias": cfg.ami_alias}],
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
            # IMDSv2 only, one hop: pods cannot borrow the node's role; they get their own through IRSA.
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
                "volumeSize": f"{pool_config(cfg, pool).disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True,
                "kmsKeyID": volume_key_arn, "deleteOnTermination": True}}],
            "tags": dict(tags),
        },
    }


def _requirements(pool: NodePoolConfig, zones: pulumi.Input[Sequence[str]]) -> list[dict[str, Any]]:
    return [
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": list(pool.instance_categories)},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": [str(pool.minimum_generation - 1)]},
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Gt", "values": [str(MINIMUM_NODE_CPUS - 1)]},
        {"key": "karpenter.k8s.aws/instance-cpu", "operator": "Lt", "values": [str(MAXIMUM_NODE_CPUS + 1)]},
        {"key": "karpenter.k8s.aws/instance-size", "operator": "NotIn", "values": ["metal"]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": [pool.architecture]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": zones},
    ]


def _budgets(pool: NodePoolConfig) -> list[dict[str, Any]]:
    quiet = [{"nodes": "0", "reasons": QUIET_REASONS, "schedule": window.schedule, "duration": f"{window.duration_hours}h"}
             for window in pool.quiet_windows]
    return [{"nodes": pool.max_disrupted_nodes}, *quiet]


def node_pool(pool: str, cfg: KarpenterConfig, zones: pulumi.Input[Sequence[str]], worker_grace_seconds: int) -> dict[str, Any]:
    settings = pool_config(cfg, pool)
    return {
        "apiVersion": NODE_POOL_API, "kind": "NodePool", "metadata": {"name": pool},
        "spec": {
            "template": {
                "metadata": {"labels": {POOL_LABEL: pool}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool},
                    "taints": [taint(pool)],
                    "requirements": _requirements(settings, zones),
                    "expireAfter": f"{settings.expire_after_hours}h",
                    "terminationGracePeriod": f"{termination_grace_minutes(settings, worker_grace_seconds)}m",
                },
            },
            "limits": {"cpu": str(settings.cpu_limit), "memory": f"{settings.memory_limit_gib}Gi"},
            "disruption": {"consolidationPolicy": settings.consolidation_policy,
                           "consolidateAfter": f"{settings.consolidate_after_minutes}m", "budgets": _budgets(settings)},
        },
    }
