"""What the AWS Load Balancer Controller may do in AWS: its documented IAM policy for v3.5.0 (the version chart
`aws-load-balancer-controller` 3.5.0 installs), narrowed, as getPolicyDocument statements (pure functions, no Pulumi).

Source: github.com/kubernetes-sigs/aws-load-balancer-controller, tag v3.5.0 (commit 11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4),
`docs/install/iam_policy.json` (blob 761d0e733c41089c91ea009dd29faf71918085e5). The statements are the document's, in its
order (the Sids are ours: it has none), never wider, narrowed where the platform's guardrails ask
(`iam-no-wildcard-resource-on-write`: no write on "*") and the controller needs no more:
- every ARN in this region and account, where the document writes `*:*`; the writes it puts on "*" on the ARNs of the
  resources they act on (the ELB service-linked role, security groups and the VPC, load balancers, target groups,
  listeners and rules);
- ingress rules only on security groups of the cluster's VPC (`ec2:Vpc`), where the document allows any group;
- no WAF, WAFv2 or Shield writes, nor `SetWebAcl`: the release turns those integrations off (lb_controller.py).
Kept as documented: the describes and certificate reads on "*", and the ownership conditions, which test that a
resource carries `elbv2.k8s.aws/cluster` (Null), not that its value is this cluster's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
ELB_SERVICE = "elasticloadbalancing.amazonaws.com"


@dataclass(frozen=True)
class ControllerScope:
    partition: str
    region: str
    account_id: str
    vpc_id: pulumi.Input[str]

    def arns(self, service: str, *resources: str) -> list[str]:
        return [f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{resource}" for resource in resources]

    @property
    def vpc_arn(self) -> pulumi.Output[str]:
        return pulumi.Output.concat(f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:vpc/", self.vpc_id)


def _null(kind: str, absent: bool) -> dict[str, Any]:
    """`kind` (RequestTag or ResourceTag) carries the cluster tag (absent=False) or does not (absent=True)."""
    return {"test": "Null", "variable": f"aws:{kind}/{CLUSTER_TAG}", "values": ["true" if absent else "false"]}


def _equals(variable: str, *values: str) -> dict[str, Any]:
    return {"test": "StringEquals", "variable": variable, "values": list(values)}


def _owned() -> list[dict[str, Any]]:
    return [_null("ResourceTag", absent=False)]


def _requested() -> list[dict[str, Any]]:
    return [_null("RequestTag", absent=False)]


def _retagged() -> list[dict[str, Any]]:
    """Tags changed on a resource the controller owns, never the cluster tag itself."""
    return [_null("RequestTag", absent=True), _null("ResourceTag", absent=False)]


TARGET_GROUPS_AND_LOAD_BALANCERS = ("targetgroup/*/*", "loadbalancer/net/*/*", "loadbalancer/app/*/*")
LISTENERS_AND_RULES = ("listener/net/*/*/*", "listener/app/*/*/*", "listener-rule/net/*/*/*", "listener-rule/app/*/*/*")

DESCRIBE = (
    "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:GetCoipPoolUsage", "ec2:DescribeCoipPools",
    "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools", "ec2:DescribeRouteTables",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeCapacityReservation",
)
# Certificates and Cognito user pools an Ingress's annotations may name (the document's WAF and Shield actions left out).
INTEGRATIONS = ("cognito-idp:DescribeUserPoolClient", "acm:ListCertificates", "acm:DescribeCertificate", "iam:ListServerCertificates",
                "iam:GetServerCertificate")
MODIFY_OWNED = (
    "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets", "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyCapacityReservation", "elasticloadbalancing:ModifyIpPools",
)
MODIFY_ANY_LISTENER = (
    "elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:RemoveListenerCertificates", "elasticloadbalancing:ModifyRule", "elasticloadbalancing:SetRulePriorities",
)


def reads(scope: ControllerScope) -> list[dict[str, Any]]:
    """The service-linked role ELB needs once per account, the describes, and the certificate and Cognito reads."""
    return [
        {"sid": "CreateElbServiceLinkedRole", "actions": ["iam:CreateServiceLinkedRole"],
         "resources": [f"arn:{scope.partition}:iam::{scope.account_id}:role/aws-service-role/{ELB_SERVICE}/AWSServiceRoleForElasticLoadBalancing"],
         "conditions": [_equals("iam:AWSServiceName", ELB_SERVICE)]},
        {"sid": "DescribeEc2AndElb", "actions": list(DESCRIBE), "resources": ["*"]},
        {"sid": "ReadCertificatesAndCognito", "actions": list(INTEGRATIONS), "resources": ["*"]},
    ]


def security_groups(scope: ControllerScope) -> list[dict[str, Any]]:
    """Ingress rules on the VPC's groups (the nodes' included), and the groups it creates, tags and deletes as its own."""
    groups = scope.arns("ec2", "security-group/*")
    return [
        {"sid": "ChangeSecurityGroupIngressInTheVpc", "actions": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
         "resources": groups, "conditions": [{"test": "ArnEquals", "variable": "ec2:Vpc", "values": [scope.vpc_arn]}]},
        {"sid": "CreateSecurityGroup", "actions": ["ec2:CreateSecurityGroup"], "resources": [*groups, scope.vpc_arn]},
        {"sid": "TagSecurityGroupOnCreation", "actions": ["ec2:CreateTags"], "resources": groups,
         "conditions": [_equals("ec2:CreateAction", "CreateSecurityGroup"), *_requested()]},
        {"sid": "RetagOwnedSecurityGroups", "actions": ["ec2:CreateTags", "ec2:DeleteTags"], "resources": groups, "conditions": _retagged()},
        {"sid": "ChangeOwnedSecurityGroups",
         "actions": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"],
         "resources": groups, "conditions": _owned()},
    ]


def load_balancers(scope: ControllerScope) -> list[dict[str, Any]]:
    """Load balancers and target groups created with the cluster tag and changed while they carry it; listeners, rules and
    target registrations on any of this region and account."""
    owned_kinds = scope.arns("elasticloadbalancing", *TARGET_GROUPS_AND_LOAD_BALANCERS)
    listeners = scope.arns("elasticloadbalancing", *LISTENERS_AND_RULES)
    return [
        {"sid": "CreateTaggedLoadBalancersAndTargetGroups",
         "actions": ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"], "resources": owned_kinds,
         "conditions": _requested()},
        {"sid": "CreateAndDeleteListenersAndRules",
         "actions": ["elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
                     "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"], "resources": [*owned_kinds, *listeners]},
        {"sid": "RetagOwnedLoadBalancersAndTargetGroups",
         "actions": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], "resources": owned_kinds,
         "conditions": _retagged()},
        {"sid": "TagListenersAndRules", "actions": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], "resources": listeners},
        {"sid": "ChangeOwnedLoadBalancersAndTargetGroups", "actions": list(MODIFY_OWNED), "resources": [*owned_kinds, *listeners],
         "conditions": _owned()},
        {"sid": "TagLoadBalancersAndTargetGroupsOnCreation", "actions": ["elasticloadbalancing:AddTags"], "resources": owned_kinds,
         "conditions": [_equals("elasticloadbalancing:CreateAction", "CreateTargetGroup", "CreateLoadBalancer"), *_requested()]},
        {"sid": "RegisterTargets", "actions": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
         "resources": scope.arns("elasticloadbalancing", "targetgroup/*/*")},
        {"sid": "ChangeAnyListenerAndRule", "actions": list(MODIFY_ANY_LISTENER), "resources": listeners},
    ]


def controller_statements(scope: ControllerScope) -> list[dict[str, Any]]:
    """The documented policy's 16 statements, in its order, narrowed as the module says."""
    return [*reads(scope), *security_groups(scope), *load_balancers(scope)]
