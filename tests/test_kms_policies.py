"""Tests every customer-managed key's policy: the account administers each key without using it, and each key's use is
granted, statement by statement, to exactly the services and principals that need it.

moto cannot prove any of this: its KMS evaluates key policies only for a Deny of kms:DescribeKey on "*" (no Allow, no
principal, no condition), and its IAM enforcement authorizes KMS calls against "*" and never sees kms:ViaService (no
service calls KMS on a caller's behalf there). So the documents are asserted exactly, and a small evaluator below
checks that every IAM grant on a key of the plan is also admitted by that key's policy, as AWS requires of both.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from components import kms
from policies.airflow_guard.documents import as_list
from tests.conftest import VARIANTS, variant_config
from tools.offline import Plan, run_stack_config

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
KEY = "aws:kms/key:Key"
ADMIN = {"Sid": "AccountAdministers", "Effect": "Allow", "Action": [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*",
    "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"],
    "Resource": "*", "Principal": {"AWS": ROOT}}
STORAGE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
# The KMS actions on a key that IAM policies of this program may name, concrete (a pattern is expanded over these).
KEY_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
               "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext",
               "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]


def policy(plan: Plan, key: str) -> list[dict[str, Any]]:
    return json.loads(plan.named(key).inputs["policy"])["Statement"]


def through(sid: str, service: str, actions: Any) -> dict[str, Any]:
    """The account's principals, through one service of this region, from this account."""
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": "*", "Principal": {"AWS": ROOT},
            "Condition": {"StringEquals": {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}}}


def grants_through(sid: str, service: str) -> dict[str, Any]:
    """Grants the service creates for the AWS resources it encrypts."""
    statement = through(sid, service, "kms:CreateGrant")
    statement["Condition"]["Bool"] = {"kms:GrantIsForAWSResource": "true"}
    return statement


@pytest.fixture(scope="module")
def efs_plan() -> Plan:
    stack, config = variant_config("prod-efs")
    return run_stack_config(config, stack)


def plan_of(request: pytest.FixtureRequest, variant: str) -> Plan:
    """The session's plan of dev or prod, or a fresh plan of another variant."""
    if variant in ("dev", "prod"):
        return request.getfixturevalue(f"{variant}_plan")
    stack, config = variant_config(variant)
    return run_stack_config(config, stack)


class TestAdministration:
    """Tests that each key of every stack is administered by the account, which may not use it."""

    @pytest.mark.parametrize("variant", sorted(VARIANTS))
    def test_every_key_starts_with_the_administrators_statement(self, request, variant):
        """Each key starts with AWS's key administrators statement for the account, which gets no other unconditioned statement."""
        plan = plan_of(request, variant)
        keys = plan.of_type(KEY)
        assert keys
        for key in keys:
            first, *usage = json.loads(key.inputs["policy"])["Statement"]
            assert (key.name, first) == (key.name, ADMIN)
            assert usage, key.name
            assert [s["Sid"] for s in usage if s["Principal"] == {"AWS": ROOT} and "Condition" not in s] == [], key.name

    def test_administration_uses_nothing(self):
        """None of the administrators' actions is a cryptographic operation (kms:Create* is CreateAlias and CreateGrant)."""
        crypto = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                  "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext"]
        assert [a for a in crypto for pattern in kms.ADMIN_ACTIONS if fnmatch.fnmatchcase(a, pattern)] == []

    def test_a_key_without_usage_is_refused(self):
        """customer_managed_key will not create a key that nobody may use (nor one on AWS's default policy)."""
        with pytest.raises(ValueError, match="key k: a key policy needs at least one usage statement"):
            kms.customer_managed_key("k", "nothing", None, False, kms.Account("aws", ACCOUNT), [])


class TestUsagePerKey:
    """Tests each prod key's usage statements exactly: principals, actions, conditions."""

    def test_dag_bucket_key_only_through_s3(self, prod_plan):
        """Data keys and decryption are delegated to the account's IAM policies, through S3 only (readers, CI, log writers, deployer)."""
        assert policy(prod_plan, "airflow-prod-dags-key") == [
            ADMIN, through("AccountUsesThroughS3", "s3", ["kms:GenerateDataKey", "kms:Decrypt"])]

    def test_secrets_key_only_through_secrets_manager(self, prod_plan):
        """The component roles that read connections and variables, and whoever writes them, only through Secrets Manager."""
        assert policy(prod_plan, "airflow-prod-access-secrets-key") == [
            ADMIN, through("AccountUsesThroughSecretsManager", "secretsmanager", ["kms:GenerateDataKey", "kms:Decrypt"])]

    def test_db_key_only_through_rds(self, prod_plan):
        """Storage, snapshots and Performance Insights: through RDS only, grants only for the AWS resources RDS makes."""
        assert policy(prod_plan, "airflow-prod-db-key") == [
            ADMIN, through("AccountUsesThroughRds", "rds", STORAGE), grants_through("AccountGrantsThroughRds", "rds")]

    def test_broker_key_only_through_elasticache(self, prod_plan):
        """The replication group's disks and backups: through ElastiCache only."""
        assert policy(prod_plan, "airflow-prod-broker-key") == [
            ADMIN, through("AccountUsesThroughElastiCache", "elasticache", STORAGE),
            grants_through("AccountGrantsThroughElastiCache", "elasticache")]

    def test_dag_volume_key_only_through_efs(self, efs_plan):
        """The EFS copy of the DAGs: through EFS only."""
        assert policy(efs_plan, "airflow-prod-airflow-dag-volume-key") == [
            ADMIN, through("AccountUsesThroughEfs", "elasticfilesystem", STORAGE),
            grants_through("AccountGrantsThroughEfs", "elasticfilesystem")]

    def test_cluster_key(self, prod_plan):
        """The cluster role (Secrets), Auto Scaling (system node volumes), EC2 (Karpenter's and PVC volumes), Logs (one log group)."""
        autoscaling = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        assert policy(prod_plan, "airflow-prod-cluster-key") == [
            ADMIN,
            {"Sid": "ClusterRoleEncryptsSecrets", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
             "Resource": "*", "Principal": {"AWS": prod_plan.named("airflow-prod-cluster-role").outputs["arn"]}},
            {"Sid": "AutoScalingUsesKeyForNodeVolumes", "Effect": "Allow", "Action": [*STORAGE, "kms:DescribeKey"], "Resource": "*",
             "Principal": {"AWS": autoscaling}},
            {"Sid": "AutoScalingGrantsForNodeVolumes", "Effect": "Allow", "Action": "kms:CreateGrant", "Resource": "*",
             "Principal": {"AWS": autoscaling}, "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
            through("AccountUsesThroughEc2", "ec2", STORAGE),
            grants_through("AccountGrantsThroughEc2", "ec2"),
            {"Sid": "LogsEncryptControlPlaneLogGroup", "Effect": "Allow",
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "Resource": "*",
             "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
             "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn":
                                         f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/eks/airflow-prod/cluster"}}}]

    def test_the_cluster_role_exists_before_the_key(self, prod_plan):
        """KMS refuses a policy naming a principal that does not exist: the key waits for the role it names."""
        key = prod_plan.named("airflow-prod-cluster-key")
        assert prod_plan.named("airflow-prod-cluster-role").urn in key.dependencies

    def test_interruption_queue_key(self, prod_plan):
        """EventBridge encrypts for the four rules; the controller role, created first, decrypts only through SQS."""
        rules = [prod_plan.named(f"airflow-prod-karpenter-{event}").outputs["arn"]
                 for event in ("spot-interruption", "rebalance", "instance-state-change", "scheduled-change")]
        controller = prod_plan.named("airflow-prod-karpenter-controller-role")
        assert policy(prod_plan, "airflow-prod-karpenter-queue-key") == [
            ADMIN,
            {"Sid": "EventBridgeEncryptsForTheRules", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
             "Principal": {"Service": "events.amazonaws.com"}, "Condition": {"ArnEquals": {"aws:SourceArn": rules}}},
            {"Sid": "ControllerDecryptsThroughSqs", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
             "Principal": {"AWS": controller.outputs["arn"]},
             "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}}]
        assert controller.urn in prod_plan.named("airflow-prod-karpenter-queue-key").dependencies

    def test_alarm_topic_key(self, prod_plan):
        """CloudWatch alone may use the alarm topic's key, to publish alarms."""
        assert policy(prod_plan, "airflow-prod-alarms-key") == [
            ADMIN, {"Sid": "CloudWatchPublishes", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"}}]


def _compatible(key_statement: dict[str, Any], iam_conditions: dict[str, dict[str, Any]]) -> bool:
    """Whether the IAM statement's calls can meet the key statement's conditions (this account; a key IAM leaves open or narrows)."""
    for test, pairs in key_statement.get("Condition", {}).items():
        for variable, values in pairs.items():
            if variable == "kms:CallerAccount":
                if as_list(values) != [ACCOUNT]:
                    return False
                continue
            allowed = iam_conditions.get(test, {}).get(variable)
            if allowed is not None and not set(as_list(allowed)) <= set(as_list(values)):
                return False
    return True


def admitted(key_statements: list[dict[str, Any]], role_arn: str, action: str, iam_conditions: dict[str, dict[str, Any]]) -> list[str]:
    """The Sids of the key statements that let `role_arn` call `action` under the IAM statement's conditions."""
    return [s["Sid"] for s in key_statements if s["Effect"] == "Allow"
            and {role_arn, ROOT} & set(as_list((s.get("Principal") or {}).get("AWS")))
            and any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in as_list(s["Action"]))
            and _compatible(s, iam_conditions)]


class TestKeyPoliciesAdmitTheIamGrants:
    """Tests that each use an IAM policy grants on a key is also granted by the key's policy (AWS requires both)."""

    def grants(self, plan: Plan) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(role, key, concrete action, IAM conditions) for every KMS action an inline role policy allows on a key of the plan."""
        keys = {k.outputs["arn"]: k.name for k in plan.of_type(KEY)}
        roles = {r.id: r for r in plan.of_type("aws:iam/role:Role")}
        found = []
        for role_policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            role = roles[role_policy.inputs["role"]]
            for statement in json.loads(role_policy.inputs["policy"])["Statement"]:
                for resource in (r for r in as_list(statement.get("Resource")) if r in keys):
                    for action in KEY_ACTIONS:
                        if any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"])):
                            found.append((role.name, keys[resource], action, statement.get("Condition", {})))
        return found

    @pytest.mark.parametrize("variant", ["prod", "dev", "prod-efs"])
    def test_every_iam_grant_on_a_key_is_admitted(self, request, variant):
        """Each (role, key, action) an IAM policy allows is admitted by a key statement naming the role or the account, same service."""
        plan = plan_of(request, variant)
        roles = {r.name: r.outputs["arn"] for r in plan.of_type("aws:iam/role:Role")}
        missing = [(role, key, action) for role, key, action, conditions in self.grants(plan)
                   if not admitted(policy(plan, key), roles[role], action, conditions)]
        assert missing == []

    def test_who_uses_which_key_through_iam(self, prod_plan):
        """The roles whose IAM policies use a key, as the key policies' comments say: nothing vacuous about the check above."""
        assert sorted({(role.removeprefix("airflow-prod-"), key.removeprefix("airflow-prod-"))
                       for role, key, _, _ in self.grants(prod_plan)}) == [
            ("access-api-server", "dags-key"), ("access-dag-processor", "access-secrets-key"), ("access-dag-processor", "dags-key"),
            ("access-triggerer", "access-secrets-key"), ("access-triggerer", "dags-key"), ("access-worker", "access-secrets-key"),
            ("access-worker", "dags-key"), ("cluster-ebs-csi-role", "cluster-key"), ("dags-reader", "dags-key"),
            ("dags-team-analytics", "dags-key"), ("dags-team-finance", "dags-key"), ("dags-team-marketing", "dags-key"),
            ("karpenter-controller-role", "cluster-key"), ("karpenter-controller-role", "karpenter-queue-key")]

    def test_the_service_a_key_names_binds_the_iam_grant(self, prod_plan):
        """A worker's data keys on the DAG key are admitted through S3 only, and never an action the key policy does not list."""
        statements = policy(prod_plan, "airflow-prod-dags-key")
        worker = prod_plan.named("airflow-prod-access-worker").outputs["arn"]
        via = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
        assert admitted(statements, worker, "kms:GenerateDataKey", via) == ["AccountUsesThroughS3"]
        assert admitted(statements, worker, "kms:GenerateDataKey", {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}) == []
        assert admitted(statements, worker, "kms:Encrypt", via) == []
        assert admitted(statements, worker, "kms:DescribeKey", via) == ["AccountAdministers"]
