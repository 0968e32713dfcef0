"""Tests team isolation in the DAG bucket for real: the generated IAM documents, loaded into moto with IAM enforcement.

moto proves the prefix scoping by resource ARN; test_dag_storage.py asserts the list-prefix condition on the
document itself (see tests/moto_iam.py for what moto evaluates).
"""

from __future__ import annotations

import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from tests.moto_iam import ENFORCED_FROM_THE_FIRST_CALL, Sandbox, denied, role_documents

ROLES = {"analytics": "airflow-prod-dags-team-analytics", "marketing": "airflow-prod-dags-team-marketing",
         "reader": "airflow-prod-dags-reader"}
pytestmark = pytest.mark.usefixtures("fake_aws_credentials")


@pytest.fixture
def sandbox(prod_plan):
    with mock_aws():
        yield Sandbox(prod_plan, {who: role_documents(prod_plan, resource) for who, resource in ROLES.items()})


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
