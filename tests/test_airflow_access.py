"""Tests the AirflowAccess component: one IRSA role per Airflow component, its grants, and the Slack connection.

The second half loads the generated trust and policy documents into moto with IAM enforcement on (as
test_iam_isolation.py does): moto evaluates actions and resources, so the logs/ scoping is proved for real
there, while the list-prefix and kms:ViaService conditions are asserted on the documents.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from components.config import SECRET_KEYS, ConfigError
from tests.conftest import stack_config
from tests.moto_iam import ACCOUNT, ENFORCED_FROM_THE_FIRST_CALL, REGION, Sandbox, denied, role_documents
from tools.offline import Plan

COMPONENT = "airflow-platform:index:AirflowAccess"
ROLE = "aws:iam/role:Role"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SLACK_KEY = "airflow-platform:slackWebhookUrl"
SLACK_URL = SECRET_KEYS["slackWebhookUrl"]
# Chart component -> (logical-name suffix of its role, its service account in namespace airflow).
COMPONENTS = {"workers": ("worker", "airflow-worker"), "triggerer": ("triggerer", "airflow-triggerer"),
              "dagProcessor": ("dag-processor", "airflow-dag-processor"), "apiServer": ("api-server", "airflow-api-server")}
WRITERS = ["workers", "triggerer", "dagProcessor"]


def role(plan: Plan, component: str):
    return plan.named(f"airflow-{plan.stack}-access-{COMPONENTS[component][0]}")


def policy(plan: Plan, component: str) -> dict:
    return json.loads(plan.named(f"airflow-{plan.stack}-access-{COMPONENTS[component][0]}-policy").inputs["policy"])


def as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def arns(plan: Plan) -> dict[str, str]:
    env = f"airflow-{plan.stack}"
    return {"bucket": plan.named(f"{env}-dags-bucket").outputs["arn"], "bucketKey": plan.named(f"{env}-dags-key").outputs["arn"],
            "secretsKey": plan.named(f"{env}-access-secrets-key").outputs["arn"]}


def log_statements(plan: Plan, write: bool) -> list[dict]:
    a = arns(plan)
    return [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": a["bucket"], "Condition": {"StringLike": {"s3:prefix": "logs/*"}}},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"] if write else "s3:GetObject", "Resource": f"{a['bucket']}/logs/*"},
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"] if write else "kms:Decrypt", "Resource": a["bucketKey"],
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}},
    ]


def secret_statements(plan: Plan, prefix: str) -> list[dict]:
    secrets = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{prefix}"
    return [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [f"{secrets}/connections/*", f"{secrets}/variables/*"]},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": arns(plan)["secretsKey"],
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}},
    ]


def airflow_config(stack: str, **changes) -> dict:
    """The stack file's airflow map (so the required dagSync.image stays) with some keys replaced."""
    airflow = stack_config(stack)["airflow-platform:airflow"]
    airflow.update(changes)
    return airflow


@pytest.fixture(params=[("dev_plan", "dev"), ("prod_plan", "prod")], ids=["dev", "prod"])
def plan(request) -> Plan:
    return request.getfixturevalue(request.param[0])


class TestRoles:
    """Tests one role per Airflow component, each trusting exactly one service account."""

    def test_one_role_per_component(self, plan):
        """AirflowAccess declares four roles, exported per component and handed to the chart's service accounts."""
        [access] = plan.of_type(COMPONENT)
        assert sorted(r.name for r in plan.children(access) if r.type == ROLE) == sorted(
            f"airflow-{plan.stack}-access-{suffix}" for suffix, _ in COMPONENTS.values())
        assert plan.outputs["airflowRoleArns"] == {c: role(plan, c).outputs["arn"] for c in COMPONENTS}
        values = plan.named(f"airflow-{plan.stack}-airflow-release").inputs["values"]
        assert {c: values[c]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] for c in COMPONENTS} == plan.outputs["airflowRoleArns"]

    @pytest.mark.parametrize("component", list(COMPONENTS), ids=list(COMPONENTS))
    def test_trust_is_one_service_account(self, prod_plan, component):
        """Only the component's own service account of namespace airflow, through the cluster's OIDC provider, with the STS audience."""
        host = prod_plan.named("airflow-prod-cluster-oidc").inputs["url"].removeprefix("https://")
        [trust] = json.loads(role(prod_plan, component).inputs["assumeRolePolicy"])["Statement"]
        assert trust == {
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": prod_plan.outputs["oidcProviderArn"]},
            "Condition": {"StringEquals": {f"{host}:aud": "sts.amazonaws.com",
                                           f"{host}:sub": f"system:serviceaccount:airflow:{COMPONENTS[component][1]}"}}}

    def test_no_two_roles_share_a_subject(self, plan):
        """Each role's single subject is distinct: one service account can assume one of these roles only."""
        subjects = []
        for component in COMPONENTS:
            [trust] = json.loads(role(plan, component).inputs["assumeRolePolicy"])["Statement"]
            [subject] = [as_list(v) for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub")]
            subjects += subject
        assert subjects == [f"system:serviceaccount:airflow:{account}" for _, account in COMPONENTS.values()]


class TestPermissions:
    """Tests the exact statements each role gets from its grants."""

    @pytest.mark.parametrize("component", WRITERS, ids=WRITERS)
    def test_writers_write_logs_and_read_secrets(self, prod_plan, component):
        """Workers, triggerer and DAG processor: list/get/put logs/, the bucket key via S3, secrets under airflow/ via Secrets Manager."""
        assert policy(prod_plan, component)["Statement"] == log_statements(prod_plan, write=True) + secret_statements(prod_plan, "airflow")

    def test_api_server_only_reads_logs(self, prod_plan):
        """The API server may list and get logs and decrypt them through S3; nothing else, no secret."""
        statements = policy(prod_plan, "apiServer")["Statement"]
        assert statements == log_statements(prod_plan, write=False)
        assert sorted(a for s in statements for a in as_list(s["Action"])) == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]

    def test_no_put_outside_logs(self, plan):
        """Every statement allowing s3:PutObject (or an s3 wildcard) is scoped to <bucket>/logs/* and nothing else."""
        logs = f"{arns(plan)['bucket']}/logs/*"
        writes = [as_list(s["Resource"]) for c in COMPONENTS for s in policy(plan, c)["Statement"]
                  if any(a in ("s3:PutObject", "s3:*", "*") for a in as_list(s["Action"]))]
        assert writes == [[logs]] * len(WRITERS)

    def test_nothing_touches_teams(self, plan):
        """No resource of any role names the teams/ prefix, the whole bucket's objects, or '*'; every statement allows."""
        bucket = arns(plan)["bucket"]
        resources = [r for c in COMPONENTS for s in policy(plan, c)["Statement"] for r in as_list(s["Resource"])]
        assert [r for r in resources if "/teams" in r or r in (f"{bucket}/*", "*")] == []
        assert {s["Effect"] for c in COMPONENTS for s in policy(plan, c)["Statement"]} == {"Allow"}

    def test_custom_secrets_prefix(self, plan_with):
        """secretsPrefix moves both the granted ARNs and the chart's backend prefixes."""
        plan = plan_with("dev", {"airflow-platform:airflow": airflow_config("dev", secretsPrefix="platform/airflow")})
        for component in WRITERS:
            assert policy(plan, component)["Statement"][3:] == secret_statements(plan, "platform/airflow")
        [granted] = [s["Resource"] for s in policy(plan, "workers")["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"]
        assert granted == [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:platform/airflow/connections/*",
                           f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:platform/airflow/variables/*"]
        backend = json.loads(plan.named("airflow-dev-airflow-release").inputs["values"]["config"]["secrets"]["backend_kwargs"])
        assert (backend["connections_prefix"], backend["variables_prefix"]) == ("platform/airflow/connections", "platform/airflow/variables")


class TestSlackConnection:
    """Tests the optional Slack webhook connection in Secrets Manager."""

    def test_absent_by_default(self, plan):
        """Neither stack file sets slackWebhookUrl, so no secret and no secret version are declared."""
        assert (plan.of_type(SECRET), plan.of_type(SECRET_VERSION)) == ([], [])

    @pytest.mark.parametrize("stack, recovery_days", [("dev", 7), ("prod", 30)], ids=["dev", "prod"])
    def test_secret_when_configured(self, plan_with, stack, recovery_days):
        """A secure slackWebhookUrl creates <prefix>/connections/platform_slack, encrypted with the AirflowAccess key."""
        plan = plan_with(stack, {SLACK_KEY: {"secure": "v1:anything"}})
        [secret] = plan.of_type(SECRET)
        [access] = plan.of_type(COMPONENT)
        assert secret.inputs == {"name": "airflow/connections/platform_slack", "kmsKeyId": arns(plan)["secretsKey"],
                                 "recoveryWindowInDays": recovery_days,
                                 "description": "Company Slack webhook: the connection behind the platform notifier"}
        assert secret.parent == access.urn

    def test_version_is_the_connection_json_and_secret(self, plan_with):
        """The version holds the slackwebhook connection JSON for that secret, marked secret and never in the plan file."""
        plan = plan_with("prod", {SLACK_KEY: {"secure": "v1:anything"}})
        [secret] = plan.of_type(SECRET)
        [version] = plan.of_type(SECRET_VERSION)
        assert version.inputs["secretId"] == secret.id
        assert version.secret_inputs == ["secretString"]
        assert json.loads(version.inputs["secretString"]) == {"conn_type": "slackwebhook", "password": SLACK_URL}
        assert SLACK_URL not in json.dumps(plan.to_json())

    def test_workers_may_read_the_connection(self, plan_with):
        """The Slack secret's name (with AWS's random suffix) matches the connections ARN the workers may read."""
        plan = plan_with("prod", {SLACK_KEY: {"secure": "v1:anything"}})
        [secret] = plan.of_type(SECRET)
        arn = secret.outputs["arn"]
        assert arn.startswith(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:airflow/connections/platform_slack-")
        [granted] = [s["Resource"] for s in policy(plan, "workers")["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"]
        assert [pattern for pattern in granted if fnmatchcase(arn, pattern)] == [granted[0]]

    def test_custom_prefix_moves_the_secret(self, plan_with):
        """With secretsPrefix platform/airflow the connection is platform/airflow/connections/platform_slack."""
        plan = plan_with("dev", {SLACK_KEY: {"secure": "v1:anything"},
                                 "airflow-platform:airflow": airflow_config("dev", secretsPrefix="platform/airflow")})
        [secret] = plan.of_type(SECRET)
        assert secret.inputs["name"] == "platform/airflow/connections/platform_slack"

    def test_plain_value_is_refused(self, plan_with):
        """A slackWebhookUrl written in clear in the stack file stops the program with one sentence that does not repeat it."""
        url = "https://hooks.slack.com/services/T11111111/B11111111/plaintextvalue"
        with pytest.raises(ConfigError) as caught:
            plan_with("dev", {SLACK_KEY: url})
        assert str(caught.value) == ("Config key 'airflow-platform:slackWebhookUrl' must be a secret: set it with "
                                     "pulumi config set --secret airflow-platform:slackWebhookUrl <value>.")
        assert url not in str(caught.value)


# --- IAM for real, in moto ----------------------------------------------------------------------------

@pytest.fixture
def sandbox(prod_plan):
    with mock_aws():
        yield Sandbox(prod_plan, {component: role_documents(prod_plan, role(prod_plan, component).name)
                                  for component in ("workers", "apiServer")})


LOG = "logs/dag/run/task.log"


@pytest.mark.usefixtures("fake_aws_credentials")
class TestWorkerRoleInMoto:
    """Tests, with IAM enforced, that the worker role writes task logs and nothing else."""

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_worker_puts_and_gets_a_log(self, sandbox):
        """The worker writes a task log under logs/ and reads it back."""
        s3 = sandbox.s3["workers"]
        s3.put_object(Bucket=sandbox.bucket, Key=LOG, Body=b"task ran\n")
        assert s3.get_object(Bucket=sandbox.bucket, Key=LOG)["Body"].read() == b"task ran\n"

    @pytest.mark.parametrize("key", ["teams/analytics/x.py", "other/x", "logs", "logsx/x"],
                             ids=["team-prefix", "other-prefix", "bare-logs-key", "prefix-lookalike"])
    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_worker_cannot_put_outside_logs(self, sandbox, key):
        """The worker is denied writing anywhere but under logs/, including a key that merely starts alike."""
        assert denied(lambda: sandbox.s3["workers"].put_object(Bucket=sandbox.bucket, Key=key, Body=b"x"))

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_worker_cannot_read_dags(self, sandbox):
        """A team's DAG exists, and the worker role (unlike the DAG reader role) cannot read it."""
        sandbox.put_as_admin("teams/analytics/x.py", b"dag = 1\n")
        assert denied(lambda: sandbox.s3["workers"].get_object(Bucket=sandbox.bucket, Key="teams/analytics/x.py"))

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_enforcement_bites_on_a_widened_policy(self, sandbox):
        """Control: widened from logs/* to the whole bucket, the same write is allowed, so the denials above are real."""
        documents = sandbox.documents["workers"]
        widened = documents.policy.replace(f"{sandbox.bucket}/logs/*", f"{sandbox.bucket}/*")
        assert widened != documents.policy
        sandbox.put_policy(documents.name, widened)
        sandbox.s3["workers"].put_object(Bucket=sandbox.bucket, Key="teams/analytics/x.py", Body=b"x")


@pytest.mark.usefixtures("fake_aws_credentials")
class TestApiServerRoleInMoto:
    """Tests, with IAM enforced, that the API server role reads task logs and cannot write them."""

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_api_server_reads_a_log_the_worker_wrote(self, sandbox):
        """A worker writes a log; the API server reads it back to show it."""
        sandbox.s3["workers"].put_object(Bucket=sandbox.bucket, Key=LOG, Body=b"task ran\n")
        assert sandbox.s3["apiServer"].get_object(Bucket=sandbox.bucket, Key=LOG)["Body"].read() == b"task ran\n"

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_api_server_cannot_write_logs(self, sandbox):
        """The API server is denied writing a log, and the log the worker wrote stays as it was."""
        sandbox.s3["workers"].put_object(Bucket=sandbox.bucket, Key=LOG, Body=b"task ran\n")
        assert denied(lambda: sandbox.s3["apiServer"].put_object(Bucket=sandbox.bucket, Key=LOG, Body=b"forged"))
        assert sandbox.s3["workers"].get_object(Bucket=sandbox.bucket, Key=LOG)["Body"].read() == b"task ran\n"

    @set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
    def test_enforcement_bites_when_put_is_granted(self, sandbox):
        """Control: with s3:PutObject added to its logs statement, the API server's write goes through."""
        documents = sandbox.documents["apiServer"]
        document = json.loads(documents.policy)
        [logs] = [s for s in document["Statement"] if s["Action"] == "s3:GetObject"]
        logs["Action"] = ["s3:GetObject", "s3:PutObject"]
        sandbox.put_policy(documents.name, json.dumps(document))
        sandbox.s3["apiServer"].put_object(Bucket=sandbox.bucket, Key=LOG, Body=b"allowed")
