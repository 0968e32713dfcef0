"""The `cluster` key: the EKS cluster, its system node group and add-on versions."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field

from components.config.fields import LOG_RETENTION_DAYS, IamRoleArn, InstanceType, eks_version, matching, one_of, public_access_cidr
from components.config.model import Model


class NodeGroupConfig(Model):
    instance_types: list[InstanceType] = Field(description="EC2 instance types of the managed node group, all of one CPU architecture.")
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field("ON_DEMAND", description="ON_DEMAND or SPOT.")
    min_size: int = Field(ge=1, le=100, description="Minimum nodes (in production at least the zone count, so every zone has one).")
    max_size: int = Field(ge=1, le=500, description="Maximum nodes.")
    desired_size: int = Field(ge=1, le=500, description="Initial nodes, from minSize to maxSize.")
    disk_size_gib: int = Field(50, ge=20, le=16384, alias="diskSizeGiB", description="Root volume (gp3, encrypted with the cluster's KMS key).")


class SystemNodeGroupConfig(NodeGroupConfig):
    """Nodes for the Airflow control plane (scheduler, API server, DAG processor, triggerer) and add-ons."""

    # 4 vCPU and 16 GiB: the controllers, Airflow's control plane and monitoring request about 4.6 vCPU and 16 GiB in
    # production, which three hold with a node lost; m6i.large nodes would run full before a rollout's surge.
    instance_types: list[InstanceType] = Field(["m6i.xlarge"], min_length=1, description="EC2 instance types of the system group.")
    min_size: int = Field(2, ge=1, le=100, description="Minimum nodes of the system group.")
    max_size: int = Field(4, ge=1, le=500, description="Maximum nodes of the system group.")
    desired_size: int = Field(2, ge=1, le=500, description="Initial nodes of the system group.")


class NodeGroupsConfig(Model):
    """The managed node groups: the system group only; the workers' and task pods' nodes come from Karpenter."""

    system: SystemNodeGroupConfig = Field(default_factory=SystemNodeGroupConfig, description="The system node group.")


AddonVersion = Annotated[str, matching(r"v\d+\.\d+\.\d+-eksbuild\.\d+", "must be an EKS add-on version, like v1.19.2-eksbuild.1")]


class AddonVersionsConfig(Model):
    """Pinned EKS add-on versions; unset means the default version EKS picks for the cluster's Kubernetes version."""

    vpc_cni: Optional[AddonVersion] = Field(None, description="vpc-cni add-on version.")
    coredns: Optional[AddonVersion] = Field(None, description="coredns add-on version.")
    kube_proxy: Optional[AddonVersion] = Field(None, description="kube-proxy add-on version.")
    ebs_csi_driver: Optional[AddonVersion] = Field(None, description="aws-ebs-csi-driver add-on version.")
    efs_csi_driver: Optional[AddonVersion] = Field(None, description="aws-efs-csi-driver add-on version (only with airflow.dagDelivery efs).")


class ClusterConfig(Model):
    kubernetes_version: Annotated[str, AfterValidator(eks_version)] = Field(
        "1.33", description="EKS Kubernetes version, as a string.")
    endpoint_public_access_cidrs: list[Annotated[str, AfterValidator(public_access_cidr)]] = Field(
        default_factory=list, description="CIDR blocks that may reach the API endpoint from the internet; empty keeps the endpoint private. 0.0.0.0/0 is refused.")
    admin_role_arns: list[IamRoleArn] = Field(
        default_factory=list, description="IAM roles granted cluster admin through EKS access entries.")
    creator_admin: bool = Field(
        True, description="Grant the identity that creates the cluster admin access (the deploying CI needs it for the Kubernetes provider); changing it replaces the cluster.")
    log_retention_days: Annotated[int, one_of(LOG_RETENTION_DAYS, "CloudWatch Logs retention periods")] = Field(
        90, description="Retention of the control-plane log group (all five log types are on); one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653.")
    node_groups: NodeGroupsConfig = Field(default_factory=NodeGroupsConfig, description="The managed node groups.")
    addon_versions: AddonVersionsConfig = Field(default_factory=AddonVersionsConfig, description="Pinned EKS add-on versions.")
