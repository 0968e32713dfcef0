"""The `karpenter` key: the node autoscaler, its node class and the NodePools of the workers and the task pods."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field

from components.config.fields import cron, matching
from components.config.model import Model

# An EKS-optimised AL2023 release, pinned: "latest" would drift every node whenever AWS publishes an AMI.
AmiAlias = Annotated[str, matching(r"al2023@v\d{8}", "must pin an EKS AL2023 AMI release as al2023@v<YYYYMMDD>, like al2023@v20250915 (not latest)")]
InstanceCategory = Literal["c", "m", "r"]
CapacityType = Literal["on-demand", "spot"]
NodeCount = Annotated[str, matching(r"(100|[1-9]?\d)%|\d{1,4}", "must be a node count or a percentage of the pool's nodes, like 1 or 10%")]


class QuietWindowConfig(Model):
    """A time in which Karpenter may not replace drifted nodes or consolidate underused ones (business hours, say)."""

    schedule: Annotated[str, AfterValidator(cron)] = Field(description="When the window opens: a cron expression in UTC, like 0 7 * * 1-5.")
    duration_hours: int = Field(ge=1, le=168, description="How long it stays open.")


class NodePoolConfig(Model):
    instance_categories: list[InstanceCategory] = Field(
        min_length=1, description="EC2 instance categories Karpenter may choose from (c compute, m general, r memory).")
    minimum_generation: int = Field(6, ge=1, le=9, description="The oldest instance generation allowed (6: m6i, c6a, r6g and newer).")
    architecture: Literal["amd64", "arm64"] = Field("amd64", description="CPU architecture of the nodes (arm64: Graviton; the Airflow image is multi-arch).")
    capacity_types: list[CapacityType] = Field(
        min_length=1, description="on-demand, spot, or both (Karpenter then prefers Spot and falls back to on-demand).")
    cpu_limit: int = Field(ge=1, le=100_000, description="Cores of all the pool's nodes together (their capacity, not what pods request).")
    memory_limit_gib: int = Field(ge=1, le=1_000_000, alias="memoryLimitGiB", description="Memory of all the pool's nodes together.")
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        description="Which nodes Karpenter removes to save cost: only empty ones, or also underused ones whose pods fit elsewhere.")
    consolidate_after_minutes: int = Field(10, ge=0, le=1440, description="How long a node must have been empty (or underused) before it goes.")
    expire_after_hours: int = Field(720, ge=1, le=8760, description="Every node is replaced after this long, so none runs an old AMI or kernel for ever.")
    max_disrupted_nodes: NodeCount = Field("10%", description="At most this many of the pool's nodes are disrupted at once, for any reason.")
    quiet_windows: list[QuietWindowConfig] = Field(
        default_factory=list, max_length=10, description="Windows in which drift and underutilisation disrupt no node (expiry and emptiness still do).")
    termination_grace_minutes: Optional[int] = Field(
        None, ge=1, le=10_080, description="How long a node being removed waits for its pods; after that Karpenter deletes them whatever "
                                           "do-not-disrupt or a PDB says. At least the workers' grace period, so the longest task finishes.",
        json_schema_extra={"defaultText": "the workers' grace period (1.5 × airflow.longestTaskMinutes) in minutes, plus 5"})
    disk_size_gib: int = Field(100, ge=20, le=16384, alias="diskSizeGiB", description="Root volume of each node (gp3, encrypted with the cluster's key).")


class WorkerNodePoolConfig(NodePoolConfig):
    """Nodes for the Celery workers."""

    instance_categories: list[InstanceCategory] = Field(["m"], min_length=1, description="EC2 instance categories of the worker nodes.")
    capacity_types: list[CapacityType] = Field(["on-demand"], min_length=1, description="on-demand (production requires it: a reclaimed Spot "
                                                                                         "node cuts every task of its workers short), or spot too.")
    cpu_limit: int = Field(100, ge=1, le=100_000, description="Cores of all worker nodes together: must hold KEDA's maximum of workers.")
    memory_limit_gib: int = Field(400, ge=1, le=1_000_000, alias="memoryLimitGiB",
                                  description="Memory of all worker nodes together: must hold KEDA's maximum of workers.")
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        "WhenEmpty", description="WhenEmpty: a worker node goes once KEDA has scaled its workers in; workers are never moved to pack nodes.")


class TaskNodePoolConfig(NodePoolConfig):
    """Nodes for KubernetesPodOperator task pods."""

    instance_categories: list[InstanceCategory] = Field(["c", "m", "r"], min_length=1, description="EC2 instance categories of the task nodes.")
    capacity_types: list[CapacityType] = Field(["spot", "on-demand"], min_length=1, description="spot and on-demand: Spot first, on-demand when none.")
    cpu_limit: int = Field(100, ge=1, le=100_000, description="Cores of all task nodes together: must hold the task namespace's quota.")
    memory_limit_gib: int = Field(400, ge=1, le=1_000_000, alias="memoryLimitGiB",
                                  description="Memory of all task nodes together: must hold the task namespace's quota.")
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        "WhenEmpty", description="WhenEmpty: task pods carry do-not-disrupt, so only empty task nodes can go anyway.")


class NodePoolsConfig(Model):
    workers: WorkerNodePoolConfig = Field(default_factory=WorkerNodePoolConfig, description="The Celery workers' NodePool.")
    tasks: TaskNodePoolConfig = Field(default_factory=TaskNodePoolConfig, description="The task pods' NodePool.")


class KarpenterConfig(Model):
    """Karpenter: the nodes under the workers and the task pods, launched when pods are pending and removed when not needed."""

    ami_alias: AmiAlias = Field("al2023@v20250915", description="The AL2023 release every Karpenter node runs; changing it drifts the nodes "
                                                               "onto the new AMI, within the disruption budgets.")
    controller_cpu_millicores: int = Field(500, ge=100, le=8000, description="CPU request of each of the two controller replicas.")
    controller_memory_mib: int = Field(1024, ge=256, le=16384, alias="controllerMemoryMiB",
                                       description="Memory request and limit of each controller replica.")
    node_pools: NodePoolsConfig = Field(default_factory=NodePoolsConfig, description="The NodePools.")
