"""Tests what Karpenter may do in AWS, on the plan's own documents: the controller's role, the nodes' role, the
interruption queue's policy and that queue key's policy.

What moto 5's IAM enforcement evaluates, found by trying each call under it (see also tests/moto_iam.py):
- SQS calls that name a queue URL, against that queue's ARN: the controller's queue scoping is proven by real calls, and
  so are the writes it is refused that no statement grants (the exact action table below shows none does).
- EC2, SSM, KMS, pricing, GetQueueUrl and IAM calls that name no role only against "*" (a scoped allow is refused there
  too); its EKS answers SignatureDoesNotMatch to any signed call; iam:PassRole is never a call. There, moto's evaluator
  (`IAMPolicy.is_action_permitted`, what its enforcement runs) matches actions and resources on the ARN AWS authorizes.
  It passes conditions it has no request context for, so every condition is asserted on the document, exactly.
- No resource policy and no Service principal: its SQS stores a queue policy without applying it, its evaluator raises on
  a Service principal, and nothing else installed evaluates policies. The queue policy, the queue key's policy and the
  node role's trust are asserted exactly. The plan's SQS ARN is the mocks' `...:queue/<name>` (AWS's is `...:<name>`):
  the moto tests put moto's ARN of the same queue in its place.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.moto_iam import ACCOUNT, ENFORCED_FROM_THE_FIRST_CALL, REGION, Sandbox, denied, role_documents

CLUSTERS = {"dev": "airflow-dev", "prod": "airflow-prod"}
NODE_POLICIES = ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly", "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                 "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"]
EVENTS = ("spot-interruption", "rebalance", "instance-state-change", "scheduled-change")
LAUNCH_CALLS = ("RunInstances", "CreateFleet", "CreateLaunchTemplate")
LAUNCHED = ["fleet/*", "instance/*", "volume/*", "network-interface/*", "launch-template/*", "spot-instances-request/*"]


@pytest.fixture(params=sorted(CLUSTERS))
def plan(request):
    return request.getfixturevalue(f"{request.param}_plan")


def karpenter(plan, suffix: str):
    return plan.named(f"{CLUSTERS[plan.stack]}-karpenter-{suffix}")


def document(plan, suffix: str) -> dict:
    return json.loads(karpenter(plan, suffix).inputs["policy"])


def statements(plan) -> dict[str, dict]:
    return {s["Sid"]: s for s in document(plan, "controller-policy")["Statement"]}


def flat_conditions(statement: dict) -> set[tuple[str, str, str]]:
    return {(test, key, value) for test, keys in statement.get("Condition", {}).items() for key, values in keys.items()
            for value in ([values] if isinstance(values, str) else values)}


def rule_arns(plan) -> list[str]:
    return [karpenter(plan, event).outputs["arn"] for event in EVENTS]


AMI = "parameter/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id"
SUBNET, INSTANCE = "subnet/subnet-0123456789abcdef0", "instance/i-0123456789abcdef0"
SCOPES = [  # id, action, resource ({...} from the plan), whether the controller's policy grants it
    ("own-cluster", "eks:DescribeCluster", "arn:aws:eks:eu-west-1:123456789012:cluster/{cluster}", True),
    ("other-stacks-cluster", "eks:DescribeCluster", "arn:aws:eks:eu-west-1:123456789012:cluster/{other_cluster}", False),
    ("lookalike-cluster", "eks:DescribeCluster", "arn:aws:eks:eu-west-1:123456789012:cluster/{cluster}-shadow", False),
    ("other-region-cluster", "eks:DescribeCluster", "arn:aws:eks:us-east-1:123456789012:cluster/{cluster}", False),
    ("eks-ami-parameter", "ssm:GetParameter", f"arn:aws:ssm:eu-west-1::{AMI}", True),
    ("own-parameter", "ssm:GetParameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/{cluster}/db-password", False),
    ("other-region-ami-parameter", "ssm:GetParameter", f"arn:aws:ssm:us-east-1::{AMI}", False),
    ("pass-node-role", "iam:PassRole", "{node_role}", True),
    ("pass-its-own-role", "iam:PassRole", "{controller_role}", False),
    ("pass-admin-role", "iam:PassRole", "arn:aws:iam::123456789012:role/platform-admin", False),
    ("read-instance-profile", "iam:GetInstanceProfile", "arn:aws:iam::123456789012:instance-profile/{cluster}_1234567890", True),
    ("other-accounts-profile", "iam:GetInstanceProfile", "arn:aws:iam::210987654321:instance-profile/{cluster}_1234567890", False),
    ("queue-url", "sqs:GetQueueUrl", "{queue}", True),
    ("other-queue-url", "sqs:GetQueueUrl", "arn:aws:sqs:eu-west-1:123456789012:{cluster}-other", False),
    ("decrypt-queue", "kms:Decrypt", "{queue_key}", True),
    ("encrypt-with-queue-key", "kms:Encrypt", "{queue_key}", False),
    ("grant-volume-key", "kms:CreateGrant", "{volume_key}", True),
    ("decrypt-other-key", "kms:Decrypt", "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000", False),
    ("launch-into-subnet", "ec2:RunInstances", f"arn:aws:ec2:eu-west-1:123456789012:{SUBNET}", True),
    ("launch-from-image", "ec2:RunInstances", "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0", True),
    ("launch-into-other-region", "ec2:RunInstances", f"arn:aws:ec2:us-east-1:123456789012:{SUBNET}", False),
    ("terminate-instance", "ec2:TerminateInstances", f"arn:aws:ec2:eu-west-1:123456789012:{INSTANCE}", True),
    ("terminate-in-other-region", "ec2:TerminateInstances", f"arn:aws:ec2:us-east-1:123456789012:{INSTANCE}", False),
    ("tag-security-group", "ec2:CreateTags", "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0", False),
]


class TestControllerScopes:
    """Tests, with moto's evaluator on the ARNs AWS authorizes, which resources each granted action reaches."""

    @pytest.mark.parametrize("action, resource, allowed", [s[1:] for s in SCOPES], ids=[s[0] for s in SCOPES])
    def test_action_on_resource(self, plan, action, resource, allowed):
        """The controller's policy grants the action on exactly the resources of this stack, region and account."""
        cluster, [other] = CLUSTERS[plan.stack], [c for stack, c in CLUSTERS.items() if stack != plan.stack]
        arn = resource.format(cluster=cluster, other_cluster=other, node_role=karpenter(plan, "node-role").outputs["arn"],
                              controller_role=karpenter(plan, "controller-role").outputs["arn"],
                              queue=karpenter(plan, "queue").outputs["arn"], queue_key=karpenter(plan, "queue-key").outputs["arn"],
                              volume_key=plan.named(f"{cluster}-cluster-key").outputs["arn"])
        verdict = IAMPolicy(karpenter(plan, "controller-policy").inputs["policy"]).is_action_permitted(action, arn)
        assert verdict is (PermissionResult.PERMITTED if allowed else PermissionResult.NEUTRAL)


class TestControllerDocument:
    """Tests the controller policy's actions, EC2 resource patterns and conditions, which moto cannot evaluate."""

    def test_actions_per_statement(self, plan):
        """Every statement allows exactly the actions of Karpenter 1.14's documented policy (plus the KMS ones)."""
        assert {sid: s["Action"] for sid, s in statements(plan).items()} == {
            "AllowScopedEC2InstanceAccessActions": ["ec2:RunInstances", "ec2:CreateFleet"],
            "AllowScopedEC2LaunchTemplateAccessActions": ["ec2:RunInstances", "ec2:CreateFleet"],
            "AllowScopedEC2InstanceActionsWithTags": [f"ec2:{call}" for call in LAUNCH_CALLS],
            "AllowScopedResourceCreationTagging": "ec2:CreateTags",
            "AllowScopedResourceTagging": "ec2:CreateTags",
            "AllowScopedDeletion": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "AllowPassingInstanceRole": "iam:PassRole",
            "AllowScopedInstanceProfileCreationActions": "iam:CreateInstanceProfile",
            "AllowScopedInstanceProfileTagActions": "iam:TagInstanceProfile",
            "AllowScopedInstanceProfileActions": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                                                  "iam:DeleteInstanceProfile"],
            "AllowInstanceProfileReadActions": "iam:GetInstanceProfile",
            "AllowUnscopedInstanceProfileListAction": "iam:ListInstanceProfiles",
            "AllowRegionalReadActions": [f"ec2:Describe{what}" for what in (
                "CapacityReservations", "Images", "Instances", "InstanceStatus", "InstanceTypeOfferings", "InstanceTypes", "LaunchTemplates",
                "PlacementGroups", "SecurityGroups", "SpotPriceHistory", "Subnets")],
            "AllowSSMReadActions": "ssm:GetParameter",
            "AllowPricingReadActions": "pricing:GetProducts",
            "AllowAPIServerEndpointDiscovery": "eks:DescribeCluster",
            "AllowInterruptionQueueActions": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "AllowNodeVolumeEncryption": ["kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:ReEncrypt*", "kms:DescribeKey"],
            "AllowNodeVolumeGrants": "kms:CreateGrant",
            "AllowInterruptionQueueDecryption": "kms:Decrypt",
        }
        assert {key for s in statements(plan).values() for key in s} == {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert {s["Effect"] for s in statements(plan).values()} == {"Allow"}

    def test_ec2_resources_and_unscoped_statements(self, plan):
        """EC2 is reached in this region only, as the documentation scopes it; "*" only where the API has no resource."""
        ec2 = [f"arn:aws:ec2:eu-west-1:*:{kind}" for kind in LAUNCHED]
        assert {sid: s["Resource"] for sid, s in statements(plan).items() if "ec2:" in json.dumps(s["Action"])} == {
            "AllowScopedEC2InstanceAccessActions": ["arn:aws:ec2:eu-west-1::image/*", "arn:aws:ec2:eu-west-1::snapshot/*",
                                                    "arn:aws:ec2:eu-west-1:*:security-group/*", "arn:aws:ec2:eu-west-1:*:subnet/*"],
            "AllowScopedEC2LaunchTemplateAccessActions": "arn:aws:ec2:eu-west-1:*:launch-template/*",
            "AllowScopedEC2InstanceActionsWithTags": ec2,
            "AllowScopedResourceCreationTagging": ec2,
            "AllowScopedResourceTagging": "arn:aws:ec2:eu-west-1:*:instance/*",
            "AllowScopedDeletion": ["arn:aws:ec2:eu-west-1:*:instance/*", "arn:aws:ec2:eu-west-1:*:launch-template/*"],
            "AllowRegionalReadActions": "*",
        }
        assert sorted(sid for sid, s in statements(plan).items() if s["Resource"] == "*") == [
            "AllowPricingReadActions", "AllowRegionalReadActions", "AllowUnscopedInstanceProfileListAction"]

    def test_conditions_per_statement(self, plan):
        """Launches and tags need this cluster's and a NodePool's tags, profiles an EC2NodeClass's in this region, keys
        go through EC2 or SQS only, reads stay in the region; the rest carries no condition."""
        cluster, region, eq, like = CLUSTERS[plan.stack], "eu-west-1", "StringEquals", "StringLike"
        owned = {(eq, f"aws:ResourceTag/kubernetes.io/cluster/{cluster}", "owned"), (like, "aws:ResourceTag/karpenter.sh/nodepool", "*")}
        requested = {(eq, f"aws:RequestTag/kubernetes.io/cluster/{cluster}", "owned"), (eq, "aws:RequestTag/eks:eks-cluster-name", cluster),
                     (like, "aws:RequestTag/karpenter.sh/nodepool", "*")}
        profile_owned = {(eq, f"aws:ResourceTag/kubernetes.io/cluster/{cluster}", "owned"),
                         (eq, "aws:ResourceTag/topology.kubernetes.io/region", region),
                         (like, "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass", "*")}
        profile_requested = {(eq, f"aws:RequestTag/kubernetes.io/cluster/{cluster}", "owned"),
                             (eq, "aws:RequestTag/eks:eks-cluster-name", cluster),
                             (eq, "aws:RequestTag/topology.kubernetes.io/region", region),
                             (like, "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass", "*")}
        through_ec2 = {(eq, "kms:ViaService", f"ec2.{region}.amazonaws.com")}
        assert {sid: flat_conditions(s) for sid, s in statements(plan).items() if "Condition" in s} == {
            "AllowScopedEC2LaunchTemplateAccessActions": owned,
            "AllowScopedEC2InstanceActionsWithTags": requested,
            "AllowScopedResourceCreationTagging": requested | {(eq, "ec2:CreateAction", action) for action in LAUNCH_CALLS},
            "AllowScopedResourceTagging": owned | {("StringEqualsIfExists", "aws:RequestTag/eks:eks-cluster-name", cluster)} | {
                ("ForAllValues:StringEquals", "aws:TagKeys", key) for key in ("eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name")},
            "AllowScopedDeletion": owned,
            "AllowPassingInstanceRole": {(eq, "iam:PassedToService", "ec2.amazonaws.com")},
            "AllowScopedInstanceProfileCreationActions": profile_requested,
            "AllowScopedInstanceProfileTagActions": profile_owned | profile_requested,
            "AllowScopedInstanceProfileActions": profile_owned,
            "AllowRegionalReadActions": {(eq, "aws:RequestedRegion", region)},
            "AllowNodeVolumeEncryption": through_ec2,
            "AllowNodeVolumeGrants": through_ec2 | {("Bool", "kms:GrantIsForAWSResource", "true")},
            "AllowInterruptionQueueDecryption": {(eq, "kms:ViaService", f"sqs.{region}.amazonaws.com")},
        }


QUEUE, OTHER_QUEUE = "airflow-prod-karpenter", "airflow-prod-other"


class ControllerSandbox(Sandbox):
    """The prod controller role in moto with its policy as planned, but for the mocks' queue ARN, replaced by the one moto
    gives the interruption queue; that queue, another one, an instance profile, and the controller's clients."""

    def __init__(self, plan):
        documents = role_documents(plan, "airflow-prod-karpenter-controller-role")
        planned = plan.named("airflow-prod-karpenter-queue").outputs["arn"]
        assert documents.policy.count(planned) == 1
        policy = documents.policy.replace(planned, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}")
        super().__init__(plan, {"controller": dataclasses.replace(documents, policy=policy)})
        self.role = documents.name
        self.queues = {name: self.admin.client("sqs").create_queue(QueueName=name)["QueueUrl"] for name in (QUEUE, OTHER_QUEUE)}
        self.admin.client("iam").create_instance_profile(InstanceProfileName="airflow-prod_1234567890")
        self.clients = {service: self.client_as("controller", service) for service in ("sqs", "iam", "ec2", "s3", "kms", "ssm")}


@pytest.fixture
def controller(prod_plan):
    with mock_aws():
        yield ControllerSandbox(prod_plan)


WRITES = [  # id, client, call (client, sandbox): writes no statement of the controller's policy grants
    ("sqs-send", "sqs", lambda c, s: c.send_message(QueueUrl=s.queues[QUEUE], MessageBody="forged")),
    ("sqs-purge", "sqs", lambda c, s: c.purge_queue(QueueUrl=s.queues[QUEUE])),
    ("sqs-set-policy", "sqs", lambda c, s: c.set_queue_attributes(QueueUrl=s.queues[QUEUE], Attributes={"Policy": "{}"})),
    ("iam-create-role", "iam", lambda c, s: c.create_role(RoleName="escape", AssumeRolePolicyDocument=s.documents["controller"].trust)),
    ("iam-widen-own-policy", "iam", lambda c, s: c.put_role_policy(RoleName=s.role, PolicyName="more", PolicyDocument="{}")),
    ("iam-attach-admin", "iam", lambda c, s: c.attach_role_policy(RoleName=s.role, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")),
    ("ec2-create-vpc", "ec2", lambda c, s: c.create_vpc(CidrBlock="10.99.0.0/16")),
    ("s3-list-buckets", "s3", lambda c, s: c.list_buckets()),
    ("s3-put-dag", "s3", lambda c, s: c.put_object(Bucket=s.bucket, Key="teams/analytics/x.py", Body=b"x")),
    ("kms-create-key", "kms", lambda c, s: c.create_key()),
    ("ssm-put-parameter", "ssm", lambda c, s: c.put_parameter(Name="/aws/service/forged", Value="x", Type="String")),
]


@pytest.mark.usefixtures("fake_aws_credentials")
class TestControllerInMoto:
    """Tests, with IAM enforced on every call, the controller's queue scoping and the writes it is refused."""

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_receives_and_deletes_an_interruption_message(self, controller):
        """A message in the interruption queue is received and deleted by the controller, which empties the queue."""
        controller.admin.client("sqs").send_message(QueueUrl=controller.queues[QUEUE], MessageBody='{"detail-type": "AWS Health Event"}')
        sqs = controller.clients["sqs"]
        [message] = sqs.receive_message(QueueUrl=controller.queues[QUEUE], VisibilityTimeout=0)["Messages"]
        assert message["Body"] == '{"detail-type": "AWS Health Event"}'
        sqs.delete_message(QueueUrl=controller.queues[QUEUE], ReceiptHandle=message["ReceiptHandle"])
        assert "Messages" not in controller.admin.client("sqs").receive_message(QueueUrl=controller.queues[QUEUE])

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_cannot_read_or_delete_another_queues_messages(self, controller):
        """Another queue's message can be neither received nor deleted, and stays there."""
        admin = controller.admin.client("sqs")
        admin.send_message(QueueUrl=controller.queues[OTHER_QUEUE], MessageBody="other")
        receipt = admin.receive_message(QueueUrl=controller.queues[OTHER_QUEUE], VisibilityTimeout=0)["Messages"][0]["ReceiptHandle"]
        sqs = controller.clients["sqs"]
        assert denied(lambda: sqs.receive_message(QueueUrl=controller.queues[OTHER_QUEUE]))
        assert denied(lambda: sqs.delete_message(QueueUrl=controller.queues[OTHER_QUEUE], ReceiptHandle=receipt))
        assert [m["Body"] for m in admin.receive_message(QueueUrl=controller.queues[OTHER_QUEUE])["Messages"]] == ["other"]

    @pytest.mark.parametrize("service, call", [w[1:] for w in WRITES], ids=[w[0] for w in WRITES])
    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_writes_outside_its_scopes_are_refused(self, controller, service, call):
        """No statement grants the write, so IAM refuses it whatever the resource."""
        assert denied(lambda: call(controller.clients[service], controller))

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_lists_instance_profiles_and_describes_ec2(self, controller):
        """The unscoped reads go through: the instance profiles, and the region's security groups."""
        profiles = controller.clients["iam"].list_instance_profiles()["InstanceProfiles"]
        assert [p["InstanceProfileName"] for p in profiles] == ["airflow-prod_1234567890"]
        groups = controller.clients["ec2"].describe_security_groups()["SecurityGroups"]
        assert [g["GroupName"] for g in groups] == ["default"]

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_enforcement_bites_on_another_queue(self, controller):
        """Control: with the other queue's ARN in the statement, that queue is read and the interruption queue refused."""
        moved = controller.documents["controller"].policy.replace(f":{QUEUE}\"", f":{OTHER_QUEUE}\"")
        assert moved != controller.documents["controller"].policy
        controller.put_policy(controller.role, moved)
        sqs = controller.clients["sqs"]
        assert sqs.receive_message(QueueUrl=controller.queues[OTHER_QUEUE]).get("Messages") is None
        assert denied(lambda: sqs.receive_message(QueueUrl=controller.queues[QUEUE]))


class TestNodeRoleAndQueue:
    """Tests, on the documents (nothing offline evaluates them), the node role's trust and the queue's two policies."""

    def test_node_role_is_for_ec2_with_three_managed_policies(self, plan):
        """Only EC2 may assume the node role; it has exactly the three managed policies, no inline one, an EC2_LINUX entry."""
        role = karpenter(plan, "node-role")
        assert json.loads(role.inputs["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}
        attached = [a.inputs["policyArn"] for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                    if a.inputs["role"] == role.id]
        assert sorted(attached) == NODE_POLICIES
        assert [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id] == []
        entry = karpenter(plan, "node-access").inputs
        assert (entry["principalArn"], entry["type"], entry["clusterName"]) == (role.outputs["arn"], "EC2_LINUX", CLUSTERS[plan.stack])

    def test_queue_policy_admits_only_eventbridge_for_the_four_rules(self, plan):
        """Only events.amazonaws.com may send, only with one of the four rules as aws:SourceArn (no AWS principal, no other
        rule, no other action); every request without TLS is denied."""
        queue = karpenter(plan, "queue").outputs["arn"]
        assert document(plan, "queue-policy") == {"Version": "2012-10-17", "Statement": [
            {"Sid": "EventBridgeRulesSend", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue,
             "Principal": {"Service": "events.amazonaws.com"}, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns(plan)}}},
            {"Sid": "DenyHTTP", "Effect": "Deny", "Action": "sqs:*", "Resource": queue, "Principal": "*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}

    def test_the_four_rules_target_the_queue(self, plan):
        """Each rule sends its event to the interruption queue, and the queue is encrypted with its own key."""
        queue = karpenter(plan, "queue")
        targets = {karpenter(plan, f"{event}-target").inputs["rule"]: karpenter(plan, f"{event}-target").inputs["arn"]
                   for event in EVENTS}
        assert targets == {karpenter(plan, event).outputs["name"]: queue.outputs["arn"] for event in EVENTS}
        assert queue.inputs["kmsMasterKeyId"] == karpenter(plan, "queue-key").outputs["arn"]

    def test_queue_key_serves_eventbridge_only_for_the_four_rules(self, plan):
        """The account administers the key; EventBridge encrypts only for the four rules; the controller decrypts only through SQS."""
        [admin, *usage] = document(plan, "queue-key")["Statement"]
        assert (admin["Sid"], admin["Principal"]) == ("AccountAdministers", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
        assert usage == [
            {"Sid": "EventBridgeEncryptsForTheRules", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
             "Resource": "*", "Principal": {"Service": "events.amazonaws.com"},
             "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns(plan)}}},
            {"Sid": "ControllerDecryptsThroughSqs", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
             "Principal": {"AWS": karpenter(plan, "controller-role").outputs["arn"]},
             "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}}]
