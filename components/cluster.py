"""Cluster: EKS with a private API endpoint, encrypted secrets, every control-plane log, IRSA, the system managed node
group over every private subnet, the core add-ons, admin access entries, and a Kubernetes provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, kms
from components.config import ClusterConfig, NodeGroupConfig, node_group_architecture
from components.names import POOL_LABEL

CONTROL_PLANE_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
NODE_POLICIES = ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy"]
EBS_CSI_NAMESPACE, EBS_CSI_SERVICE_ACCOUNT = "kube-system", "ebs-csi-controller-sa"
# The cluster's default StorageClass: gp3 volumes encrypted with the cluster's key (Prometheus, Alertmanager...).
STORAGE_CLASS = "gp3-encrypted"
_AMI_TYPES = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}
# The VPC CNI enforces the NetworkPolicy objects of components/network_policies.py only with network policy switched on,
# the add-on's one key for it (EKS User Guide, "Restrict Pod network traffic with Kubernetes network policies",
# docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html: `{"enableNetworkPolicy": "true"}`, a
# string). It sets the network policy agent's --enable-network-policy and the amazon-vpc-cni ConfigMap's
# enable-network-policy-controller (charts/aws-vpc-cni in aws/amazon-vpc-cni-k8s); the agent container itself
# (nodeAgent.enabled) is on by default from v1.14, and EKS runs the policy controller in the control plane. Enforcement
# stays in the standard mode: a new pod takes traffic for the few seconds until its policies are in place (strict mode
# would start every pod with no traffic at all, CoreDNS's and every egress included, which these ingress-only policies
# do not provide for).
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}


def kubeconfig(cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token`: it holds no credential of its own."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{"name": cluster_name, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
        }}}],
    })


@dataclass
class ClusterArgs:
    # Fixed, not generated: kubeconfigs, the log group and the key policy refer to it.
    cluster_name: str
    config: ClusterConfig
    region: str
    partition: str
    account_id: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]  # the nodes'
    # Where EKS places the control plane's interfaces (the API server's side of webhooks and kubelet calls).
    control_plane_subnet_ids: Sequence[pulumi.Input[str]]
    protect: bool


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    oidc: iam.OidcIssuer
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Cluster", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = args.cluster_name
        log_group_name = f"/aws/eks/{cluster_name}/cluster"

        # Before the key: its policy names the role.
        role = aws.iam.Role(f"{name}-role", assume_role_policy=iam.service_trust("eks.amazonaws.com", self), opts=child)
        role_policies = iam.attach_managed_policies(role, args.partition, ["AmazonEKSClusterPolicy"], self, f"{name}-role")
        self.key = kms.customer_managed_key(
            name, "EKS secrets envelope encryption, node volumes and control-plane logs", self, args.protect,
            kms.Account(args.partition, args.account_id), self._key_usage(args, role.arn, log_group_name))

        # Created here rather than by EKS, so it has a retention and is encrypted with our key.
        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=log_group_name, retention_in_days=cfg.log_retention_days,
                                            kms_key_id=self.key.arn, opts=child)

        public = bool(cfg.endpoint_public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=cfg.kubernetes_version,
            role_arn=role.arn,
            vpc_config={
                "subnet_ids": list(args.control_plane_subnet_ids),
                "endpoint_private_access": True,
                "endpoint_public_access": public,
                "public_access_cidrs": list(cfg.endpoint_public_access_cidrs) if public else None,
            },
            encryption_config={"provider": {"key_arn": self.key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=CONTROL_PLANE_LOG_TYPES,
            access_config={"authentication_mode": "API",
                           "bootstrap_cluster_creator_admin_permissions": cfg.creator_admin},
            # The add-ons below are managed by EKS as add-ons, so EKS must not also install its unmanaged copies.
            bootstrap_self_managed_addons=False,
            upgrade_policy={"support_type": "STANDARD"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, *role_policies]),
        )
        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.security_group_id = cluster.vpc_config.cluster_security_group_id

        issuer = cluster.identities[0].oidcs[0].issuer
        oidc_provider = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=issuer, client_id_lists=[iam.STS_AUDIENCE], opts=child)
        self.oidc = iam.OidcIssuer(provider_arn=oidc_provider.arn, host=issuer.apply(lambda url: url.removeprefix("https://")))

        # vpc-cni and kube-proxy first: without them no node becomes Ready and the node groups never finish.
        network_addons = [self._addon(name, cluster, "vpc-cni", cfg.addon_versions.vpc_cni,
                                      configuration_values=json.dumps(VPC_CNI_CONFIGURATION)),
                          self._addon(name, cluster, "kube-proxy", cfg.addon_versions.kube_proxy)]

        node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=iam.service_trust("ec2.amazonaws.com", self), opts=child)
        node_policies = iam.attach_managed_policies(node_role, args.partition, NODE_POLICIES, self, f"{name}-node-role")
        # The system group only: the workers' and the task pods' nodes come from Karpenter (karpenter.py), which runs here.
        self.node_groups = [self._node_group(name, "system", cfg.node_groups.system, cluster, node_role, args, [*node_policies, *network_addons])]

        ebs_csi_role = aws.iam.Role(
            f"{name}-ebs-csi-role", assume_role_policy=iam.irsa_trust(self.oidc, EBS_CSI_NAMESPACE, [EBS_CSI_SERVICE_ACCOUNT], self),
            opts=child)
        iam.attach_managed_policies(ebs_csi_role, args.partition, ["service-role/AmazonEBSCSIDriverPolicy"], self, f"{name}-ebs-csi-role")
        # AWS's policy covers AWS-managed keys only; volumes encrypted with our key need these on it.
        aws.iam.RolePolicy(f"{name}-ebs-csi-role-key", role=ebs_csi_role.id, policy=iam.document([
            {"actions": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "resources": [self.key.arn]},
            {"actions": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "resources": [self.key.arn],
             "conditions": [{"test": "Bool", "variable": "kms:GrantIsForAWSResource", "values": ["true"]}]},
        ], self), opts=child)
        # coredns and the EBS CSI controller are Deployments: they need nodes to become healthy.
        self._addon(name, cluster, "coredns", cfg.addon_versions.coredns, depends_on=self.node_groups)
        ebs_csi = self._addon(name, cluster, "aws-ebs-csi-driver", cfg.addon_versions.ebs_csi_driver, depends_on=self.node_groups,
                              service_account_role_arn=ebs_csi_role.arn)

        for index, principal in enumerate(cfg.admin_role_arns):
            entry = aws.eks.AccessEntry(f"{name}-admin-{index}", cluster_name=cluster.name, principal_arn=principal,
                                        type="STANDARD", opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}-policy", cluster_name=cluster.name, principal_arn=entry.principal_arn,
                policy_arn=f"arn:{args.partition}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}",
                access_scope={"type": "cluster"}, opts=child)

        self.kubeconfig = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda values: kubeconfig(values[0], values[1], values[2], args.region))
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.node_groups))
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3", metadata={"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner="ebs.csi.aws.com", parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": self.key.arn},
            # Bind where the pod lands, so the volume is created in that pod's zone.
            volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True, reclaim_policy="Delete",
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_csi]))

        self.register_outputs({"name": self.name, "endpoint": self.endpoint, "oidcProviderArn": self.oidc.provider_arn,
                               "securityGroupId": self.security_group_id})

    def _key_usage(self, args: ClusterArgs, role_arn: pulumi.Output[str], log_group_name: str) -> list[dict]:
        """Who uses the cluster key: EKS for secrets, EC2 for node and PVC volumes, CloudWatch Logs for the log group."""
        account = kms.Account(args.partition, args.account_id)
        autoscaling = (f"arn:{args.partition}:iam::{args.account_id}:role/aws-service-role/"
                       "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")
        ec2 = kms.service_host("ec2", args.region)
        log_group_arn = f"arn:{args.partition}:logs:{args.region}:{args.account_id}:log-group:{log_group_name}"
        grant_for_aws_resources = {"test": "Bool", "variable": "kms:GrantIsForAWSResource", "values": ["true"]}
        return [
            # The control plane envelope-encrypts Secrets as the cluster role, calling KMS itself (no service in between).
            kms.to_principals("ClusterRoleEncryptsSecrets", [role_arn], ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]),
            # Managed node groups launch through Auto Scaling, which must use the key for encrypted root volumes; its
            # service-linked role has no access to customer-managed keys of its own (EC2 Auto Scaling User Guide,
            # "Required AWS KMS key policy for use with encrypted volumes").
            kms.to_principals("AutoScalingUsesKeyForNodeVolumes", [autoscaling],
                              ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]),
            kms.to_principals("AutoScalingGrantsForNodeVolumes", [autoscaling], ["kms:CreateGrant"], [grant_for_aws_resources]),
            # Karpenter's controller (node root volumes) and the EBS CSI driver (PVCs) create volumes through EC2; their
            # roles trust the cluster's OIDC issuer, so they exist only after the key, and their IAM policies name it.
            kms.through_service("AccountUsesThroughEc2", account, ec2, kms.STORAGE_ACTIONS),
            kms.grants_through_service("AccountGrantsThroughEc2", account, ec2),
            kms.to_log_groups("LogsEncryptControlPlaneLogGroup", args.region, [log_group_arn]),
        ]

    def _addon(self, name: str, cluster: aws.eks.Cluster, addon: str, version: Optional[str],
               depends_on: Sequence[pulumi.Resource] = (), service_account_role_arn: Optional[pulumi.Input[str]] = None,
               configuration_values: Optional[str] = None) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon}", cluster_name=cluster.name, addon_name=addon, addon_version=version,
            service_account_role_arn=service_account_role_arn, configuration_values=configuration_values,
            # Take over whatever is there on create; keep a person's hand edits on update.
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="PRESERVE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)))

    def _node_group(self, name: str, pool: str, group: NodeGroupConfig, cluster: aws.eks.Cluster, node_role: aws.iam.Role,
                    args: ClusterArgs, depends_on: list[pulumi.Resource]) -> aws.eks.NodeGroup:
        template = aws.ec2.LaunchTemplate(
            f"{name}-{pool}-lt",
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {
                "volume_size": group.disk_size_gib, "volume_type": "gp3", "encrypted": "true",
                "kms_key_id": self.key.arn, "delete_on_termination": "true"}}],
            # IMDSv2 only, one hop: pods cannot borrow the node's role; they get their own through IRSA.
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=self))
        return aws.eks.NodeGroup(
            f"{name}-{pool}",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            # Every private subnet, so the group's nodes spread over every zone.
            subnet_ids=list(args.private_subnet_ids),
            instance_types=list(group.instance_types),
            capacity_type=group.capacity_type,
            ami_type=_AMI_TYPES[node_group_architecture(group)],
            scaling_config={"min_size": group.min_size, "max_size": group.max_size, "desired_size": group.desired_size},
            update_config={"max_unavailable_percentage": 33},
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            labels={POOL_LABEL: pool},
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on,
                                        # A person may resize the group by hand (the runbooks say how); a plan must not undo it.
                                        ignore_changes=["scalingConfig.desiredSize"]),
        )
