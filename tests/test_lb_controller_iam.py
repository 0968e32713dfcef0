"""Tests the AWS Load Balancer Controller's policy (components/lb_controller_iam.py) as the program renders it offline,
through getPolicyDocument under the platform's mocks, against the controller's documented policy for v3.5.0: never wider,
and narrower exactly where the module says.

The document is kubernetes-sigs/aws-load-balancer-controller, tag v3.5.0 (commit 11eb202c97e4ae2ee45e0658c4cde9a4b59f33d4),
`docs/install/iam_policy.json`. It is not under ../shared (neither in charts/aws-load-balancer-controller-3.5.0 nor in
schemas), and tools/upstream.py locates no such file, so DOCUMENTED transcribes it: one row per statement, in its order,
with its actions, resources and conditions as written there (a reviewer diffs the table against the document at the tag).
Its statements have no Sid; the table names each by the Sid the module gives it.

moto's evaluator (`IAMPolicy.is_action_permitted`) matches actions and resources. Of conditions it evaluates only
StringEquals, on the values a test hands it, and passes every other operator: the `Null` tag conditions and the `ec2:Vpc`
ArnEquals never refuse there, so they are asserted on the document, exactly.
"""

from __future__ import annotations

import fnmatch
import functools
import json

import pulumi
import pytest
from moto.iam.access_control import IAMPolicy, PermissionResult

from components.iam import document
from components.lb_controller_iam import ControllerScope, controller_statements
from tools.offline import run

REGION, ACCOUNT, VPC = "eu-west-1", "123456789012", "vpc-0123456789abcdef0"
ON_CREATE, REQUEST_TAGGED, RESOURCE_TAGGED = "CreateAction", "aws:RequestTag/elbv2.k8s.aws/cluster", "aws:ResourceTag/elbv2.k8s.aws/cluster"

DOCUMENTED = [  # Sid (the module's), actions, resources, conditions {(operator, key): values}: the document's statements
    ("CreateElbServiceLinkedRole", {"iam:CreateServiceLinkedRole"}, {"*"},
     {("StringEquals", "iam:AWSServiceName"): {"elasticloadbalancing.amazonaws.com"}}),
    ("DescribeEc2AndElb", {
        "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones", "ec2:DescribeInternetGateways",
        "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
        "ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:GetCoipPoolUsage",
        "ec2:DescribeCoipPools", "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools", "ec2:DescribeRouteTables",
        "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
        "elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes",
        "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeListenerAttributes",
        "elasticloadbalancing:DescribeCapacityReservation"}, {"*"}, {}),
    ("UseCertificatesWafAndShield", {
        "cognito-idp:DescribeUserPoolClient", "acm:ListCertificates", "acm:DescribeCertificate", "iam:ListServerCertificates",
        "iam:GetServerCertificate", "waf-regional:GetWebACL", "waf-regional:GetWebACLForResource",
        "waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL", "wafv2:GetWebACL", "wafv2:GetWebACLForResource",
        "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "shield:GetSubscriptionState", "shield:DescribeProtection",
        "shield:CreateProtection", "shield:DeleteProtection"}, {"*"}, {}),
    ("ChangeAnySecurityGroupIngress", {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}, {"*"}, {}),
    ("CreateSecurityGroup", {"ec2:CreateSecurityGroup"}, {"*"}, {}),
    ("TagSecurityGroupOnCreation", {"ec2:CreateTags"}, {"arn:aws:ec2:*:*:security-group/*"},
     {("StringEquals", f"ec2:{ON_CREATE}"): {"CreateSecurityGroup"}, ("Null", REQUEST_TAGGED): {"false"}}),
    ("RetagOwnedSecurityGroups", {"ec2:CreateTags", "ec2:DeleteTags"}, {"arn:aws:ec2:*:*:security-group/*"},
     {("Null", REQUEST_TAGGED): {"true"}, ("Null", RESOURCE_TAGGED): {"false"}}),
    ("ChangeOwnedSecurityGroups", {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"},
     {"*"}, {("Null", RESOURCE_TAGGED): {"false"}}),
    ("CreateTaggedLoadBalancersAndTargetGroups", {"elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"},
     {"*"}, {("Null", REQUEST_TAGGED): {"false"}}),
    ("CreateAndDeleteListenersAndRules", {"elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
                                          "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"}, {"*"}, {}),
    ("RetagOwnedLoadBalancersAndTargetGroups", {"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"},
     {"arn:aws:elasticloadbalancing:*:*:targetgroup/*/*", "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
      "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*"},
     {("Null", REQUEST_TAGGED): {"true"}, ("Null", RESOURCE_TAGGED): {"false"}}),
    ("TagListenersAndRules", {"elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"},
     {"arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*", "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
      "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*", "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*"}, {}),
    ("ChangeOwnedLoadBalancersAndTargetGroups", {
        "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
        "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets", "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes",
        "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:ModifyListenerAttributes",
        "elasticloadbalancing:ModifyCapacityReservation", "elasticloadbalancing:ModifyIpPools"},
     {"*"}, {("Null", RESOURCE_TAGGED): {"false"}}),
    ("TagLoadBalancersAndTargetGroupsOnCreation", {"elasticloadbalancing:AddTags"},
     {"arn:aws:elasticloadbalancing:*:*:targetgroup/*/*", "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
      "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*"},
     {("StringEquals", f"elasticloadbalancing:{ON_CREATE}"): {"CreateTargetGroup", "CreateLoadBalancer"},
      ("Null", REQUEST_TAGGED): {"false"}}),
    ("RegisterTargets", {"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"},
     {"arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"}, {}),
    ("ChangeAnyListenerAndRule", {
        "elasticloadbalancing:SetWebAcl", "elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddListenerCertificates",
        "elasticloadbalancing:RemoveListenerCertificates", "elasticloadbalancing:ModifyRule",
        "elasticloadbalancing:SetRulePriorities"}, {"*"}, {}),
]


# Where the module narrows the document: Sid -> (its Sid in the document, actions left out, conditions added).
NARROWED = {
    "ReadCertificatesAndCognito": ("UseCertificatesWafAndShield", {
        "waf-regional:GetWebACL", "waf-regional:GetWebACLForResource", "waf-regional:AssociateWebACL", "waf-regional:DisassociateWebACL",
        "wafv2:GetWebACL", "wafv2:GetWebACLForResource", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL",
        "shield:GetSubscriptionState", "shield:DescribeProtection", "shield:CreateProtection", "shield:DeleteProtection"}, {}),
    "ChangeSecurityGroupIngressInTheVpc": ("ChangeAnySecurityGroupIngress", set(),
                                           {("ArnEquals", "ec2:Vpc"): {f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC}"}}),
    "ChangeAnyListenerAndRule": ("ChangeAnyListenerAndRule", {"elasticloadbalancing:SetWebAcl"}, {}),
}
READS_ON_ANY = {"DescribeEc2AndElb", "ReadCertificatesAndCognito"}


@functools.cache
def rendered(partition: str) -> str:
    """The policy JSON for `partition`, as components/iam.document() gets it from getPolicyDocument under the mocks."""
    def program():
        holder = pulumi.ComponentResource("airflow-platform:test:PolicyHolder", "lb-controller")
        pulumi.export("policy", document(controller_statements(ControllerScope(partition, REGION, ACCOUNT, VPC)), holder))

    return run(program, {"aws:region": REGION}).outputs["policy"]


def statements(partition: str = "aws") -> list[dict]:
    return json.loads(rendered(partition))["Statement"]


def values(element: str | list[str]) -> set[str]:
    """An element's values as a set: IAM reads Action, Resource and a condition's values in any order."""
    return {element} if isinstance(element, str) else set(element)


def conditions(statement: dict) -> dict[tuple[str, str], set[str]]:
    return {(operator, key): values(given) for operator, keys in statement.get("Condition", {}).items() for key, given in keys.items()}


POSITIONS = [(i, row[0], NARROWED.get(row[0], (row[0],))[0]) for i, row in enumerate(DOCUMENTED)]


class TestAgainstTheDocument:
    """Tests the rendered policy against the document, statement by statement: never wider, narrower as declared."""

    def test_the_documents_statements_in_its_order(self):
        """Sixteen Allow statements, in the document's order, with no element beyond Sid, Effect, Action, Resource and
        Condition (no NotAction, no Principal)."""
        policy = json.loads(rendered("aws"))
        ours = [s["Sid"] for s in policy["Statement"]]
        assert policy["Version"] == "2012-10-17" and len(ours) == 16
        assert [NARROWED.get(sid, (sid,))[0] for sid in ours] == [row[0] for row in DOCUMENTED]
        assert {s["Effect"] for s in policy["Statement"]} == {"Allow"}
        assert {key for s in policy["Statement"] for key in s} == {"Sid", "Effect", "Action", "Resource", "Condition"}

    @pytest.mark.parametrize("position, documented_sid", [(p, d) for p, _, d in POSITIONS], ids=[row[0] for row in DOCUMENTED])
    def test_never_wider_than_documented(self, position, documented_sid):
        """The statement's actions are the document's less exactly the ones declared left out; each resource lies within
        one of the document's patterns; its conditions are the document's plus exactly the ones declared added."""
        statement = statements()[position]
        _, actions, resources, documented = DOCUMENTED[position]
        _, left_out, added = NARROWED.get(statement["Sid"], (documented_sid, set(), {}))
        assert values(statement["Action"]) == actions - left_out
        assert all(any(fnmatch.fnmatchcase(ours, pattern) for pattern in resources) for ours in values(statement["Resource"]))
        assert conditions(statement) == {**documented, **added}

    def test_no_write_on_any_resource(self):
        """Only the describes and the certificate and Cognito reads keep "*"; every other statement names this region's and
        this account's ARNs."""
        on_any = {s["Sid"] for s in statements() if "*" in values(s["Resource"])}
        assert on_any == READS_ON_ANY
        arns = {r for s in statements() for r in values(s["Resource"]) if r != "*"}
        assert arns and all(r.startswith(("arn:aws:elasticloadbalancing:eu-west-1:123456789012:", "arn:aws:ec2:eu-west-1:123456789012:",
                                          "arn:aws:iam::123456789012:role/aws-service-role/")) for r in arns)

    @pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"], ids=["china", "govcloud"])
    def test_other_partition_changes_only_the_arns(self, partition):
        """In another partition the policy is the same text but for the partition of its ARNs."""
        assert rendered(partition) == rendered("aws").replace('"arn:aws:', f'"arn:{partition}:')


ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
ELB_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"
PERMITTED, NEUTRAL, DENIED = PermissionResult.PERMITTED, PermissionResult.NEUTRAL, PermissionResult.DENIED
EVALUATED = [  # id, action, resource, condition values handed to moto, its verdict on the aws policy
    # Allowed in this region and account with a Null request-tag condition, which moto passes: that the tag is required is
    # asserted above.
    ("create-load-balancer", "elasticloadbalancing:CreateLoadBalancer", f"{ELB}:loadbalancer/app/k8s-airflow-web/0123456789abcdef",
     None, PERMITTED),
    ("create-elb-service-linked-role", "iam:CreateServiceLinkedRole", ELB_ROLE,
     {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}, PERMITTED),
    # A failed StringEquals is DENIED in moto (in AWS the statement does not apply: an implicit deny); refused either way.
    ("create-other-service-linked-role", "iam:CreateServiceLinkedRole",
     f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
     {"iam:AWSServiceName": "autoscaling.amazonaws.com"}, DENIED),
    ("create-load-balancer-elsewhere", "elasticloadbalancing:CreateLoadBalancer",
     f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/k8s-airflow-web/0123456789abcdef", None, NEUTRAL),
    ("shield-protection", "shield:CreateProtection", f"arn:aws:shield::{ACCOUNT}:protection/0123", None, NEUTRAL),
    ("register-targets", "elasticloadbalancing:RegisterTargets", f"{ELB}:targetgroup/k8s-airflow-web/0123456789abcdef", None, PERMITTED),
    ("tag-listener", "elasticloadbalancing:AddTags", f"{ELB}:listener/app/k8s-airflow-web/0123456789abcdef/fedcba9876543210",
     None, PERMITTED),
    ("tag-gateway-load-balancer", "elasticloadbalancing:AddTags", f"{ELB}:loadbalancer/gwy/inspection/0123456789abcdef", None, NEUTRAL),
    ("tag-trust-store", "elasticloadbalancing:AddTags", f"{ELB}:truststore/partners/0123456789abcdef", None, NEUTRAL),
    ("delete-security-group", "ec2:DeleteSecurityGroup", f"{EC2}:security-group/sg-0123456789abcdef0", None, PERMITTED),
    ("tag-instance", "ec2:CreateTags", f"{EC2}:instance/i-0123456789abcdef0", None, NEUTRAL),
    ("create-role", "iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/escape", None, NEUTRAL),
    ("read-object", "s3:GetObject", "arn:aws:s3:::airflow-prod-dags/teams/analytics/dag.py", None, NEUTRAL),
    ("terminate-instance", "ec2:TerminateInstances", f"{EC2}:instance/i-0123456789abcdef0", None, NEUTRAL),
]


class TestMotoEvaluation:
    """Tests, with moto's evaluator, actions the policy allows and ones it refuses, and on which resources."""

    @pytest.mark.parametrize("action, resource, context, verdict", [c[1:] for c in EVALUATED], ids=[c[0] for c in EVALUATED])
    def test_action_on_resource(self, action, resource, context, verdict):
        """moto's verdict on the action, for the resource AWS authorizes it on, is exactly the expected one."""
        assert IAMPolicy(rendered("aws")).is_action_permitted(action, resource, incoming_condition_values=context) is verdict

    @pytest.mark.parametrize("partition, verdict", [("aws-cn", PERMITTED), ("aws", NEUTRAL)], ids=["same-partition", "commercial"])
    def test_china_policy_reaches_only_china_target_groups(self, partition, verdict):
        """The aws-cn policy registers targets in an aws-cn target group, not in a commercial one."""
        target_group = f"arn:{partition}:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/k8s-airflow-web/0123456789abcdef"
        assert IAMPolicy(rendered("aws-cn")).is_action_permitted("elasticloadbalancing:RegisterTargets", target_group) is verdict
