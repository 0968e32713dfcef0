"""Tests the whole program for the dev and prod stack files: provider, tags, protection, secrets, refusals."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from tools.mocks import PlatformMocks
from tools.offline import Plan, run_stack_config
from tests.conftest import stack_config

STACKS = [("dev_plan", "dev"), ("prod_plan", "prod")]
KEY = "aws:kms/key:Key"


@pytest.fixture(params=STACKS, ids=[s[1] for s in STACKS])
def plan(request) -> Plan:
    return request.getfixturevalue(request.param[0])


class TestProgram:
    """Tests properties that hold for every resource of a stack."""

    def test_runs_without_warnings(self, plan):
        """The program declares nothing deprecated and logs no warning."""
        assert plan.warnings == []

    def test_every_aws_resource_uses_the_tagging_provider(self, plan):
        """No AWS resource falls back to a default provider: all use the one that carries the default tags."""
        [provider] = plan.of_type("pulumi:providers:aws")
        aws_resources = [r for r in plan.resources if r.custom and r.type.startswith("aws:")]
        assert len(aws_resources) > 50
        # A provider reference is "<provider URN>::<provider id>".
        assert {r.provider.rsplit("::", 1)[0] for r in aws_resources} == {provider.urn}

    def test_default_tags(self, plan):
        """The provider tags every resource with environment, owner and managed-by, plus the stack's own tags."""
        [provider] = plan.of_type("pulumi:providers:aws")
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        assert tags == {"environment": plan.stack, "owner": "data-platform", "managed-by": "pulumi", "cost-center": f"data-platform-{plan.stack}"}
        assert provider.inputs["region"] == "eu-west-1"

    def test_every_component_is_parented_to_the_platform(self, plan):
        """One ComponentResource per concern, all children of the platform."""
        [platform] = plan.of_type("airflow-platform:index:Platform")
        components = sorted(r.type.split(":")[-1] for r in plan.children(platform) if not r.custom)
        expected = ["Airflow", "AirflowAccess", "Alarms", "Cluster", "DagAudit", "DagStorage", "Entry", "FlowLogs", "Karpenter", "Keda",
                    "LoadBalancerController", "MetadataDatabase", "Network", "NetworkPolicies", "Observability", "TaskPods"] + (
            ["Broker"] if plan.stack == "prod" else [])
        assert components == sorted(expected)


class TestProtection:
    """Tests which resources are protected from deletion."""

    def test_prod_protects_db_buckets_and_keys(self, prod_plan):
        """In prod exactly the DB, the DAG bucket, the DAG audit trail's bucket and every KMS key are protected."""
        protected = sorted(r.name if r.type != KEY else KEY for r in prod_plan.resources if r.protect)
        assert protected == sorted(["airflow-prod-db-postgres", "airflow-prod-dags-bucket", "airflow-prod-dag-audit-bucket"]
                                   + [KEY] * len(prod_plan.of_type(KEY)))
        # cluster, DAG bucket, DB, DB logs, alarm topic, broker, Airflow's secrets, Karpenter's interruption queue, flow logs,
        # DAG audit trail
        assert len(prod_plan.of_type(KEY)) == 10

    def test_dev_protects_nothing(self, dev_plan):
        """Dev stays disposable."""
        assert [r.name for r in dev_plan.resources if r.protect] == []

    def test_every_key_rotates(self, plan):
        """Every customer-managed key has rotation on and a 30-day deletion window."""
        for key in plan.of_type(KEY):
            assert (key.inputs["enableKeyRotation"], key.inputs["deletionWindowInDays"]) == (True, 30)


class TestSecrets:
    """Tests that nothing secret shows in outputs or in the plan file."""

    def test_generated_secrets_never_leave_as_plain_text(self, prod_plan):
        """No generated secret (passwords, tokens, keys) appears in an output or anywhere in the plan file."""
        generated = [r.outputs["result"] for r in prod_plan.of_type("random:index/randomPassword:RandomPassword")]
        generated += [r.outputs["b64Url"] for r in prod_plan.of_type("random:index/randomId:RandomId")]
        # DB master, broker token, API secret key, JWT secret, Airflow admin, Grafana admin, fernet key
        assert len(generated) == 7
        assert prod_plan.secret_outputs == []
        text = json.dumps(prod_plan.outputs) + json.dumps(prod_plan.to_json())
        assert not any(value in text for value in generated)


class TestRefusal:
    """Tests that a refused config declares nothing."""

    def test_bad_config_declares_no_resource(self):
        """A prod stack with two zones stops with the sentence before the first resource, even the provider."""

        class Counting(PlatformMocks):
            registered = 0

            def new_resource(self, args):
                Counting.registered += 1
                return super().new_resource(args)

        config = stack_config("prod")
        config["airflow-platform:zones"] = 2
        with pytest.raises(ConfigError) as caught:
            run_stack_config(config, "prod", mocks=Counting("eu-west-1"))
        assert str(caught.value) == "Config key 'airflow-platform:zones' must be at least 3 in production (got 2)."
        assert Counting.registered == 0


def test_longest_names_fit_aws_limits(plan_with):
    """With the longest environment and team names allowed, the names AWS limits stay within those limits."""
    environment, team = "e" * 20, "t" * 32
    plan = plan_with("prod", {"airflow-platform:environment": environment, "airflow-platform:production": True,
                              "airflow-platform:teams": [{"name": team, "owner": "o", "repository": "o/r"}]})
    [role] = [r for r in plan.of_type("aws:iam/role:Role") if r.name.endswith(team)]
    assert len(role.inputs["name"]) == 64
    [group] = plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert len(group.inputs["replicationGroupId"]) <= 40
    # Generated IAM role names add 8 characters to the logical name and must stay within 64.
    assert max(len(r.name) + 8 for r in plan.of_type("aws:iam/role:Role") if "name" not in r.inputs) <= 64


def test_fifty_teams_cost_two_resources_each(plan_with, prod_plan):
    """Each team adds exactly its role and its policy, so many teams stay cheap to plan and to run."""
    teams = [{"name": f"team-{i:02d}", "owner": f"t{i}@example.com", "repository": f"example-org/team-{i:02d}-dags"} for i in range(50)]
    plan = plan_with("prod", {"airflow-platform:teams": teams})
    assert len(plan.resources) - len(prod_plan.resources) == 2 * (50 - 3)
    assert len(plan.outputs["teamRoleArns"]) == 50
