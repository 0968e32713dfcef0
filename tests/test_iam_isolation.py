"""Tests team isolation in the DAG bucket for real: the generated IAM documents, loaded into moto with IAM enforcement.

moto evaluates identity policies' actions and resources (not bucket policies, and of conditions only
StringEquals on keys it knows); so these tests prove the prefix scoping by resource ARN, and
test_dag_storage.py asserts the list-prefix condition on the document itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from tools.offline import Plan

REGION = "eu-west-1"
# Inside each test body every call is checked by IAM. The set-up (administrator, bucket, roles, and the
# web-identity logins, which AWS itself serves without a signature) happens in the fixture, before that.
ENFORCED_FROM_THE_FIRST_CALL = 0
ROLES = {"analytics": "airflow-prod-dags-team-analytics", "marketing": "airflow-prod-dags-team-marketing",
         "reader": "airflow-prod-dags-reader"}


@dataclass
class RoleDocuments:
    name: str
    trust: str
    policy: str


def role_documents(plan: Plan, role_resource: str) -> RoleDocuments:
    role = plan.named(role_resource)
    [policy] = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id]
    return RoleDocuments(name=role.id, trust=role.inputs["assumeRolePolicy"], policy=policy.inputs["policy"])


class Sandbox:
    """An AWS account in moto holding the plan's bucket and roles, and a logged-in S3 client per role."""

    def __init__(self, plan: Plan):
        self.bucket = plan.outputs["dagBucket"]
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="test-admin")
        iam.put_user_policy(UserName="test-admin", PolicyName="admin", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        keys = iam.create_access_key(UserName="test-admin")["AccessKey"]
        self.admin = boto3.Session(aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"], region_name=REGION)
        self.admin.client("s3").create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.documents = {who: role_documents(plan, resource) for who, resource in ROLES.items()}
        for documents in self.documents.values():
            self.load_role(documents)
        self.s3 = {who: self._s3_as(documents.name) for who, documents in self.documents.items()}

    def load_role(self, documents: RoleDocuments) -> None:
        iam = self.admin.client("iam")
        iam.create_role(RoleName=documents.name, AssumeRolePolicyDocument=documents.trust)
        self.put_policy(documents.name, documents.policy)

    def put_policy(self, role_name: str, policy: str) -> None:
        self.admin.client("iam").put_role_policy(RoleName=role_name, PolicyName="generated", PolicyDocument=policy)

    def _s3_as(self, role_name: str):
        """An S3 client with the credentials a web-identity login to `role_name` returns."""
        credentials = boto3.client("sts", region_name=REGION).assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::123456789012:role/{role_name}", RoleSessionName="ci", WebIdentityToken="token")["Credentials"]
        return boto3.client("s3", region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"])


def denied(call) -> bool:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"] == "AccessDenied"
    return False


@pytest.fixture
def sandbox(prod_plan):
    with mock_aws():
        yield Sandbox(prod_plan)


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class TestTeamRole:
    """Tests that a team's CI role writes its own prefix and nothing else."""

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_team_writes_and_deletes_under_its_prefix(self, sandbox):
        """Analytics can put, read back and delete a DAG under teams/analytics/."""
        s3 = sandbox.s3["analytics"]
        s3.put_object(Bucket=sandbox.bucket, Key="teams/analytics/daily.py", Body=b"dag = 1\n")
        assert s3.get_object(Bucket=sandbox.bucket, Key="teams/analytics/daily.py")["Body"].read() == b"dag = 1\n"
        s3.delete_object(Bucket=sandbox.bucket, Key="teams/analytics/daily.py")

    @pytest.mark.parametrize("key", ["teams/marketing/daily.py", "daily.py", "teams/analytics-shadow/daily.py", "teams/daily.py"],
                             ids=["other-team", "bucket-root", "prefix-lookalike", "teams-root"])
    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_team_cannot_write_elsewhere(self, sandbox, key):
        """Analytics is denied writing outside teams/analytics/, including a prefix that merely starts alike."""
        assert denied(lambda: sandbox.s3["analytics"].put_object(Bucket=sandbox.bucket, Key=key, Body=b"x"))

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_team_cannot_read_or_delete_another_teams_dags(self, sandbox):
        """Marketing publishes; analytics can neither read nor delete marketing's DAG."""
        sandbox.s3["marketing"].put_object(Bucket=sandbox.bucket, Key="teams/marketing/daily.py", Body=b"dag = 1\n")
        s3 = sandbox.s3["analytics"]
        assert denied(lambda: s3.get_object(Bucket=sandbox.bucket, Key="teams/marketing/daily.py"))
        assert denied(lambda: s3.delete_object(Bucket=sandbox.bucket, Key="teams/marketing/daily.py"))

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_enforcement_bites_on_a_widened_policy(self, sandbox):
        """Control: the same write is allowed once the policy is widened to teams/*, so the denials above are real."""
        documents = sandbox.documents["analytics"]
        widened = documents.policy.replace("/teams/analytics/*", "/teams/*")
        assert widened != documents.policy
        sandbox.put_policy(documents.name, widened)
        sandbox.s3["analytics"].put_object(Bucket=sandbox.bucket, Key="teams/marketing/daily.py", Body=b"x")


class TestReaderRole:
    """Tests that the Airflow pods' role reads the bucket and cannot change it."""

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_reader_lists_and_reads_every_team(self, sandbox):
        """The reader lists the whole bucket and reads every team's DAGs."""
        sandbox.s3["analytics"].put_object(Bucket=sandbox.bucket, Key="teams/analytics/daily.py", Body=b"dag = 1\n")
        sandbox.s3["marketing"].put_object(Bucket=sandbox.bucket, Key="teams/marketing/leads.py", Body=b"dag = 2\n")
        s3 = sandbox.s3["reader"]
        listed = s3.list_objects_v2(Bucket=sandbox.bucket, Prefix="teams/")
        assert [o["Key"] for o in listed["Contents"]] == ["teams/analytics/daily.py", "teams/marketing/leads.py"]
        assert s3.get_object(Bucket=sandbox.bucket, Key="teams/marketing/leads.py")["Body"].read() == b"dag = 2\n"

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_reader_cannot_write_or_delete(self, sandbox):
        """The reader is denied put and delete, anywhere."""
        sandbox.s3["analytics"].put_object(Bucket=sandbox.bucket, Key="teams/analytics/daily.py", Body=b"dag = 1\n")
        s3 = sandbox.s3["reader"]
        assert denied(lambda: s3.put_object(Bucket=sandbox.bucket, Key="teams/analytics/evil.py", Body=b"x"))
        assert denied(lambda: s3.put_object(Bucket=sandbox.bucket, Key="evil.py", Body=b"x"))
        assert denied(lambda: s3.delete_object(Bucket=sandbox.bucket, Key="teams/analytics/daily.py"))
