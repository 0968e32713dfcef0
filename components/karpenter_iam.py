"""What Karpenter's controller may do in AWS: the statements of Karpenter 1.14's documented controller policy (its
getting-started CloudFormation template: node lifecycle, IAM integration, EKS integration, interruption queue and
resource discovery), as getPolicyDocument statements (pure functions, no Pulumi).

Everything it launches, tags or deletes is scoped as that documentation scopes it: to resources tagged for this cluster
(`kubernetes.io/cluster/<cluster>: owned`) and by a NodePool (`karpenter.sh/nodepool`), the instance profiles it manages to
an EC2NodeClass of this cluster in this region, the one role it may pass to EC2 to the Karpenter node role. Beyond the
documentation: the KMS key that encrypts the nodes' volumes and the queue, usable only through EC2 and SQS.
Left out: the zonal-shift read (`settings.enableZonalShift` stays off) and the on-demand capacity-reservation and
placement-group resources (no EC2NodeClass selects any).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

INSTANCE_PROFILE_TAG = "karpenter.k8s.aws/ec2nodeclass"
NODEPOOL_TAG = "karpenter.sh/nodepool"


@dataclass(frozen=True)
class ControllerScope:
    partition: str
    region: str
    account_id: str
    cluster_name: str


def _ec2(scope: ControllerScope, *resources: str, account: str = "*") -> list[str]:
    return [f"arn:{scope.partition}:ec2:{scope.region}:{account}:{resource}" for resource in resources]


def _instance_profiles(scope: ControllerScope) -> list[str]:
    return [f"arn:{scope.partition}:iam::{scope.account_id}:instance-profile/*"]


def _tagged_for_cluster(scope: ControllerScope, kind: str) -> dict[str, Any]:
    return {"test": "StringEquals", "variable": f"aws:{kind}/kubernetes.io/cluster/{scope.cluster_name}", "values": ["owned"]}


def _any(kind: str, tag: str) -> dict[str, Any]:
    return {"test": "StringLike", "variable": f"aws:{kind}/{tag}", "values": ["*"]}


def _equals(variable: str, *values: str) -> dict[str, Any]:
    return {"test": "StringEquals", "variable": variable, "values": list(values)}


# What a launch creates and tags, and therefore what the creation conditions cover.
LAUNCHED = ("fleet/*", "instance/*", "volume/*", "network-interface/*", "launch-template/*", "spot-instances-request/*")


def node_lifecycle(scope: ControllerScope) -> list[dict[str, Any]]:
    cluster = scope.cluster_name
    requested = [_tagged_for_cluster(scope, "RequestTag"), _equals("aws:RequestTag/eks:eks-cluster-name", cluster), _any("RequestTag", NODEPOOL_TAG)]
    owned = [_tagged_for_cluster(scope, "ResourceTag"), _any("ResourceTag", NODEPOOL_TAG)]
    return [
        {"sid": "AllowScopedEC2InstanceAccessActions", "actions": ["ec2:RunInstances", "ec2:CreateFleet"],
         "resources": [*_ec2(scope, "image/*", "snapshot/*", account=""), *_ec2(scope, "security-group/*", "subnet/*")]},
        {"sid": "AllowScopedEC2LaunchTemplateAccessActions", "actions": ["ec2:RunInstances", "ec2:CreateFleet"],
         "resources": _ec2(scope, "launch-template/*"), "conditions": owned},
        {"sid": "AllowScopedEC2InstanceActionsWithTags", "actions": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
         "resources": _ec2(scope, *LAUNCHED), "conditions": requested},
        {"sid": "AllowScopedResourceCreationTagging", "actions": ["ec2:CreateTags"], "resources": _ec2(scope, *LAUNCHED),
         "conditions": [*requested, _equals("ec2:CreateAction", "RunInstances", "CreateFleet", "CreateLaunchTemplate")]},
        {"sid": "AllowScopedResourceTagging", "actions": ["ec2:CreateTags"], "resources": _ec2(scope, "instance/*"),
         "conditions": [*owned, {"test": "StringEqualsIfExists", "variable": "aws:RequestTag/eks:eks-cluster-name", "values": [cluster]},
                        {"test": "ForAllValues:StringEquals", "variable": "aws:TagKeys",
                         "values": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}]},
        {"sid": "AllowScopedDeletion", "actions": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "resources": _ec2(scope, "instance/*", "launch-template/*"), "conditions": owned},
    ]


def iam_integration(scope: ControllerScope, node_role_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    region = scope.region
    profile_requested = [_tagged_for_cluster(scope, "RequestTag"), _equals("aws:RequestTag/eks:eks-cluster-name", scope.cluster_name),
                         _equals("aws:RequestTag/topology.kubernetes.io/region", region), _any("RequestTag", INSTANCE_PROFILE_TAG)]
    profile_owned = [_tagged_for_cluster(scope, "ResourceTag"), _equals("aws:ResourceTag/topology.kubernetes.io/region", region),
                     _any("ResourceTag", INSTANCE_PROFILE_TAG)]
    return [
        {"sid": "AllowPassingInstanceRole", "actions": ["iam:PassRole"], "resources": [node_role_arn],
         "conditions": [_equals("iam:PassedToService", "ec2.amazonaws.com")]},
        {"sid": "AllowScopedInstanceProfileCreationActions", "actions": ["iam:CreateInstanceProfile"],
         "resources": _instance_profiles(scope), "conditions": profile_requested},
        {"sid": "AllowScopedInstanceProfileTagActions", "actions": ["iam:TagInstanceProfile"],
         "resources": _instance_profiles(scope), "conditions": [*profile_owned, *profile_requested]},
        {"sid": "AllowScopedInstanceProfileActions",
         "actions": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
         "resources": _instance_profiles(scope), "conditions": profile_owned},
        {"sid": "AllowInstanceProfileReadActions", "actions": ["iam:GetInstanceProfile"], "resources": _instance_profiles(scope)},
        {"sid": "AllowUnscopedInstanceProfileListAction", "actions": ["iam:ListInstanceProfiles"], "resources": ["*"]},
    ]


def discovery(scope: ControllerScope) -> list[dict[str, Any]]:
    return [
        {"sid": "AllowRegionalReadActions", "resources": ["*"], "conditions": [_equals("aws:RequestedRegion", scope.region)],
         "actions": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus",
                     "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                     "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"]},
        {"sid": "AllowSSMReadActions", "actions": ["ssm:GetParameter"],
         "resources": [f"arn:{scope.partition}:ssm:{scope.region}::parameter/aws/service/*"]},
        {"sid": "AllowPricingReadActions", "actions": ["pricing:GetProducts"], "resources": ["*"]},
        {"sid": "AllowAPIServerEndpointDiscovery", "actions": ["eks:DescribeCluster"],
         "resources": [f"arn:{scope.partition}:eks:{scope.region}:{scope.account_id}:cluster/{scope.cluster_name}"]},
    ]


def interruption(queue_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    return [{"sid": "AllowInterruptionQueueActions", "actions": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
             "resources": [queue_arn]}]


def keys(scope: ControllerScope, volume_key_arn: pulumi.Input[str], queue_key_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """EC2 encrypts the nodes' root volumes with the cluster key on Karpenter's behalf; reading the queue decrypts."""
    through_ec2 = [_equals("kms:ViaService", f"ec2.{scope.region}.amazonaws.com")]
    return [
        {"sid": "AllowNodeVolumeEncryption", "resources": [volume_key_arn], "conditions": through_ec2,
         "actions": ["kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:ReEncrypt*", "kms:DescribeKey"]},
        {"sid": "AllowNodeVolumeGrants", "actions": ["kms:CreateGrant"], "resources": [volume_key_arn],
         "conditions": [*through_ec2, {"test": "Bool", "variable": "kms:GrantIsForAWSResource", "values": ["true"]}]},
        {"sid": "AllowInterruptionQueueDecryption", "actions": ["kms:Decrypt"], "resources": [queue_key_arn],
         "conditions": [_equals("kms:ViaService", f"sqs.{scope.region}.amazonaws.com")]},
    ]


def controller_statements(scope: ControllerScope, node_role_arn: pulumi.Input[str], queue_arn: pulumi.Input[str],
                          volume_key_arn: pulumi.Input[str], queue_key_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    return [*node_lifecycle(scope), *iam_integration(scope, node_role_arn), *discovery(scope), *interruption(queue_arn),
            *keys(scope, volume_key_arn, queue_key_arn)]
