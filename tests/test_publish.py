"""Tests `dagtool publish` over real HTTP: a moto server with IAM enforcement on, the team roles the program generates,
and a counting, fault-injecting proxy (tools/s3_proxy.py) between the tool and the server.

The tool runs through its real entry point (`cli.main`) with a team's web-identity credentials in the environment, or
through `Publisher` where the object is clearer. Every request it makes passes the proxy, which is where request
counts, ordering and scope are checked. moto evaluates the roles' actions and resources but not the `s3:prefix`
condition of the list statement (tests/moto_iam.py), so a listing of another team's prefix is allowed here where AWS
would deny it; the tool's own requests are checked at the proxy never to leave `teams/<team>/` instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
import requests
from botocore.config import Config
from botocore.retries.standard import ExponentialBackoff
from moto.core import set_initial_no_auth_action_count
from moto.server import ThreadedMotoServer

from airflow_platform_dagtool import cli
from airflow_platform_dagtool.publish import Publisher, Summary, s3_client
from tests.moto_iam import ACCOUNT, ENFORCED_FROM_THE_FIRST_CALL, REGION, RoleDocuments, role_documents
from tools.s3_proxy import INTERNAL_ERROR, SLOW_DOWN, S3Proxy

ROLES = {"analytics": "airflow-prod-dags-team-analytics", "marketing": "airflow-prod-dags-team-marketing"}
PREFIX = "teams/analytics/"
MANIFEST = PREFIX + ".dagtool-manifest.json"
MAX_ATTEMPTS = 3
enforced = set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)
# botocore's service models, parsed once for every session of this module (parsing them is most of a client's cost).
SERVICE_MODELS = botocore.loaders.create_loader()


def new_session(**kwargs) -> boto3.Session:
    """A fresh session, finding its own credentials, with the shared service models."""
    core = botocore.session.get_session()
    core.register_component("data_loader", SERVICE_MODELS)
    return boto3.Session(botocore_session=core, **kwargs)


def dag_source(dag_id: str, schedule: str, table: str) -> str:
    return f'''"""{dag_id}: loads {table} into the warehouse."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{dag_id}", schedule="{schedule}", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False,
     default_args={{"owner": "analytics", "retries": 2}}, tags=["analytics"])
def pipeline():
    @task
    def extract() -> int:
        return 42

    @task
    def load(rows: int) -> None:
        print(f"loaded {{rows}} rows into {table}")

    load(extract())


pipeline()
'''


# The team's repository: what is published (path -> bytes), and files beside it that never are.
REPOSITORY = {
    "dags/daily_sales.py": dag_source("analytics_daily_sales", "@daily", "sales").encode(),
    "dags/reports/weekly_report.py": dag_source("analytics_weekly_report", "@weekly", "reports").encode(),
    "dags/reports/monthly/monthly_close.py": dag_source("analytics_monthly_close", "@monthly", "ledger").encode(),
    "sql/revenue.sql": b"select day, sum(amount) as revenue\nfrom sales\ngroup by day\n",
}
NOT_PUBLISHED = {
    "dags/__pycache__/daily_sales.cpython-311.pyc": b"\xa7\r\r\n\x00\x00\x00\x00compiled",
    ".git/HEAD": b"ref: refs/heads/main\n",
}
CHANGED = ("dags/daily_sales.py", dag_source("analytics_daily_sales", "@hourly", "sales").encode())
ADDED = ("dags/new_dag.py", dag_source("analytics_new_dag", "@daily", "customers").encode())
REMOVED = "sql/revenue.sql"


@dataclass
class Run:
    code: int
    out: list[str]
    err: str


class ServerSandbox:
    """tests/moto_iam.py's Sandbox on a moto server: an admin, the plan's bucket, the team roles with their generated
    documents, and each team's credentials from a web-identity login, all set up before IAM is enforced."""

    def __init__(self, endpoint: str, plan, roles: dict[str, RoleDocuments]):
        self.bucket, self.documents = plan.outputs["dagBucket"], roles
        iam = new_session(region_name=REGION).client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="test-admin")
        iam.put_user_policy(UserName="test-admin", PolicyName="admin", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        keys = iam.create_access_key(UserName="test-admin")["AccessKey"]
        self.credentials = {"admin": {"AWS_ACCESS_KEY_ID": keys["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"]}}
        admin = new_session(aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"], region_name=REGION)
        self.admin_iam = admin.client("iam", endpoint_url=endpoint)
        self.admin_s3 = admin.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
        self.admin_s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        for documents in roles.values():
            self.admin_iam.create_role(RoleName=documents.name, AssumeRolePolicyDocument=documents.trust)
            self.put_policy(documents.name, documents.policy)
        sts = new_session(region_name=REGION).client("sts", endpoint_url=endpoint)
        for who, documents in roles.items():
            login = sts.assume_role_with_web_identity(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{documents.name}", RoleSessionName="ci",
                                                      WebIdentityToken="github-oidc-token")["Credentials"]
            self.credentials[who] = {"AWS_ACCESS_KEY_ID": login["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": login["SecretAccessKey"],
                                     "AWS_SESSION_TOKEN": login["SessionToken"]}

    def put_policy(self, role_name: str, policy: str) -> None:
        self.admin_iam.put_role_policy(RoleName=role_name, PolicyName="generated", PolicyDocument=policy)

    def put(self, key: str, body: bytes) -> None:
        self.admin_s3.put_object(Bucket=self.bucket, Key=key, Body=body)

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under `prefix` with its content, read as the admin straight from the server (not through the proxy)."""
        pages = self.admin_s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return {key: self.admin_s3.get_object(Bucket=self.bucket, Key=key)["Body"].read() for key in keys}

    def etag(self, key: str) -> str:
        return self.admin_s3.head_object(Bucket=self.bucket, Key=key)["ETag"]


@pytest.fixture(scope="module")
def moto_endpoint():
    # werkzeug would attach a stderr handler of its own and log every request; the proxy's log is the one that matters.
    werkzeug = logging.getLogger("werkzeug")
    level, silence = werkzeug.level, logging.NullHandler()
    werkzeug.setLevel(logging.WARNING)
    werkzeug.addHandler(silence)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    werkzeug.removeHandler(silence)
    werkzeug.setLevel(level)


@pytest.fixture
def aws_environment(monkeypatch, tmp_path):
    """No profile, config file or credential of the machine can leak in; the region is the stack's."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def sandbox(moto_endpoint, prod_plan, aws_environment):
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return ServerSandbox(moto_endpoint, prod_plan, {who: role_documents(prod_plan, resource) for who, resource in ROLES.items()})


@pytest.fixture
def proxy(moto_endpoint):
    with S3Proxy(moto_endpoint) as proxy:
        yield proxy


@pytest.fixture
def backoffs(monkeypatch) -> list[float]:
    """botocore's own backoff, computed as for real use and recorded, then slept a hundredth of: the tests stay fast."""
    delays: list[float] = []
    original = ExponentialBackoff.delay_amount

    def recorded(self, context):
        delay = original(self, context)
        delays.append(delay)
        return delay / 100

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", recorded)
    return delays


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "analytics-dags"
    for path, body in {**REPOSITORY, **NOT_PUBLISHED}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(body)
    return root


@pytest.fixture
def login(monkeypatch, sandbox):
    """Put a principal's credentials in the environment, as a CI job's login step does."""

    def as_(who: str) -> None:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        for name, value in sandbox.credentials[who].items():
            monkeypatch.setenv(name, value)
        # boto3's default session keeps the credentials it first found; a CI job is one process per login.
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", new_session())

    return as_


@pytest.fixture
def publish(capsys, login, sandbox, proxy, backoffs):
    """`dagtool publish REPO --team T ...` through the CLI's entry point, as `who`, against the proxy."""

    def run(directory: Path, team: str = "analytics", *extra: str, who: str = "analytics") -> Run:
        login(who)
        capsys.readouterr()
        code = cli.main(["publish", str(directory), "--team", team, "--bucket", sandbox.bucket, "--endpoint-url", proxy.url,
                         "--max-attempts", str(MAX_ATTEMPTS), *extra])
        captured = capsys.readouterr()
        return Run(code, captured.out.splitlines(), captured.err)

    return run


@pytest.fixture
def published(publish, repo, sandbox, proxy, backoffs):
    """The repository published once by analytics; the proxy's log and the backoffs start empty after it."""
    assert publish(repo).code == 0
    proxy.reset()
    backoffs.clear()
    return sandbox.objects()


def change_repository(repo: Path) -> None:
    """One file changed, one added, one removed."""
    (repo / CHANGED[0]).write_bytes(CHANGED[1])
    (repo / ADDED[0]).write_bytes(ADDED[1])
    (repo / REMOVED).unlink()


def changed_repository() -> dict[str, bytes]:
    files = {**REPOSITORY, CHANGED[0]: CHANGED[1], ADDED[0]: ADDED[1]}
    del files[REMOVED]
    return files


def assert_bucket_holds(sandbox: ServerSandbox, files: dict[str, bytes], elsewhere: dict[str, bytes] | None = None) -> None:
    """The bucket is exactly `files` under teams/analytics/ with a manifest that describes them, plus `elsewhere`."""
    objects = sandbox.objects()
    manifest = json.loads(objects.pop(MANIFEST))
    assert objects == {**{PREFIX + path: body for path, body in files.items()}, **(elsewhere or {})}
    assert manifest == {"files": {path: {"sha256": hashlib.sha256(body).hexdigest(), "etag": sandbox.etag(PREFIX + path)}
                                  for path, body in files.items()}}


def operations(proxy: S3Proxy) -> list[tuple[str, str, int]]:
    return [(r.operation, r.scope, r.status) for r in proxy.requests]


class TestPublish:
    """Tests what a team's publish uploads, skips and deletes, and the requests it makes for it."""

    @enforced
    def test_first_publish_uploads_exactly_the_repository(self, publish, repo, sandbox, proxy):
        """The four files land byte for byte under teams/analytics/ with the manifest; caches and .git do not."""
        run = publish(repo)
        assert (run.code, run.err) == (0, "")
        assert run.out == [
            "[1/4] uploaded teams/analytics/dags/daily_sales.py (new)",
            "[2/4] uploaded teams/analytics/dags/reports/monthly/monthly_close.py (new)",
            "[3/4] uploaded teams/analytics/dags/reports/weekly_report.py (new)",
            "[4/4] uploaded teams/analytics/sql/revenue.sql (new)",
            "uploaded 4, deleted 0, unchanged 0 (6 S3 requests)",
        ]
        assert_bucket_holds(sandbox, REPOSITORY)
        assert sorted(operations(proxy)) == sorted([("LIST", PREFIX, 200)] + [("PUT", PREFIX + path, 200) for path in REPOSITORY]
                                                   + [("PUT", MANIFEST, 200)])
        assert proxy.requests[0].operation == "LIST" and proxy.requests[-1].scope == MANIFEST

    @enforced
    def test_no_op_rerun_lists_and_reads_the_manifest_only(self, publish, published, repo, sandbox, proxy):
        """Publishing the same repository again uploads nothing and costs two requests: the LIST and the manifest GET."""
        run = publish(repo)
        assert (run.code, run.out, run.err) == (0, ["uploaded 0, deleted 0, unchanged 4 (2 S3 requests)"], "")
        assert operations(proxy) == [("LIST", PREFIX, 200), ("GET", MANIFEST, 200)]
        assert sandbox.objects() == published

    @enforced
    def test_no_op_summary_counts_what_the_proxy_sees(self, login, published, repo, sandbox, proxy):
        """Publisher's own request count is the figure the proxy counts, for a no-op."""
        login("analytics")
        summary = Publisher(s3_client(None, proxy.url, MAX_ATTEMPTS), sandbox.bucket, "analytics", echo=lambda _: None).publish(repo)
        assert summary == Summary(uploaded=0, deleted=0, unchanged=4, requests=2)
        assert len(proxy.requests) == 2

    @pytest.mark.parametrize("path, body, reason", [(*CHANGED, "changed"), (*ADDED, "new")], ids=["changed-file", "new-file"])
    @enforced
    def test_one_change_uploads_that_file_and_the_manifest(self, publish, published, repo, sandbox, proxy, path, body, reason):
        """One changed or added file is the only DAG uploaded: one PUT of it, then the manifest's PUT."""
        (repo / path).write_bytes(body)
        run = publish(repo)
        unchanged = 3 if reason == "changed" else 4
        assert (run.code, run.err) == (0, "")
        assert run.out == [f"[1/1] uploaded {PREFIX}{path} ({reason})", f"uploaded 1, deleted 0, unchanged {unchanged} (4 S3 requests)"]
        assert operations(proxy) == [("LIST", PREFIX, 200), ("GET", MANIFEST, 200), ("PUT", PREFIX + path, 200), ("PUT", MANIFEST, 200)]
        assert_bucket_holds(sandbox, {**REPOSITORY, path: body})

    @enforced
    def test_removed_file_is_deleted_after_the_uploads(self, publish, published, repo, sandbox, proxy):
        """A file removed locally is deleted, alone, and only after the upload and the manifest are written."""
        (repo / CHANGED[0]).write_bytes(CHANGED[1])
        (repo / REMOVED).unlink()
        run = publish(repo)
        assert (run.code, run.err) == (0, "")
        assert run.out == [f"[1/1] uploaded {PREFIX}{CHANGED[0]} (changed)", f"[1/1] deleted {PREFIX}{REMOVED}",
                           "uploaded 1, deleted 1, unchanged 2 (5 S3 requests)"]
        assert operations(proxy) == [("LIST", PREFIX, 200), ("GET", MANIFEST, 200), ("PUT", PREFIX + CHANGED[0], 200),
                                     ("PUT", MANIFEST, 200), ("DELETE", PREFIX + REMOVED, 204)]
        files = {**REPOSITORY, CHANGED[0]: CHANGED[1]}
        del files[REMOVED]
        assert_bucket_holds(sandbox, files)

    @enforced
    def test_object_changed_behind_the_manifest_is_uploaded_again(self, publish, published, repo, sandbox, proxy):
        """Someone overwrote a DAG in the bucket: its ETag no longer matches the manifest, so the repository's copy goes back."""
        sandbox.put(PREFIX + "dags/daily_sales.py", b"dag = 'tampered'\n")
        run = publish(repo)
        assert run.out == [f"[1/1] uploaded {PREFIX}dags/daily_sales.py (changed)", "uploaded 1, deleted 0, unchanged 3 (4 S3 requests)"]
        assert_bucket_holds(sandbox, REPOSITORY)


class TestDryRun:
    """Tests that --dry-run says what would change and changes nothing."""

    @enforced
    def test_first_dry_run_lists_only(self, publish, repo, sandbox, proxy):
        """On an empty prefix the plan is four new files; the one request is the LIST and the bucket stays empty."""
        run = publish(repo, "analytics", "--dry-run")
        assert (run.code, run.err) == (0, "")
        assert run.out == [f"would upload {PREFIX}{path} (new)" for path in sorted(REPOSITORY, key=lambda p: Path(p).parts)] + [
            "would upload 4, would delete 0, unchanged 0 (1 S3 requests)"]
        assert operations(proxy) == [("LIST", PREFIX, 200)]
        assert sandbox.objects() == {}

    @enforced
    def test_dry_run_of_changes_writes_nothing(self, publish, published, repo, sandbox, proxy):
        """A changed, an added and a removed file are announced; only the LIST and the manifest GET are made."""
        change_repository(repo)
        run = publish(repo, "analytics", "--dry-run")
        assert (run.code, run.err) == (0, "")
        assert run.out == [f"would upload {PREFIX}{CHANGED[0]} (changed)", f"would upload {PREFIX}{ADDED[0]} (new)",
                           f"would delete {PREFIX}{REMOVED}", "would upload 2, would delete 1, unchanged 2 (2 S3 requests)"]
        assert operations(proxy) == [("LIST", PREFIX, 200), ("GET", MANIFEST, 200)]
        assert sandbox.objects() == published


class TestIsolation:
    """Tests that a team's publish stays in its prefix, and that IAM, not the tool, stops it elsewhere."""

    OTHERS = {"teams/marketing/leads.py": b"dag = 'leads'\n", "teams/marketing/.dagtool-manifest.json": b'{"files": {}}',
              "teams/analytics-shadow/daily_sales.py": b"dag = 'lookalike'\n", "shared/airflow_platform_notify.py": b"notify = 1\n"}

    @enforced
    def test_other_prefixes_are_never_listed_read_or_touched(self, publish, repo, sandbox, proxy):
        """Across a first publish, a change and a removal, every request is under teams/analytics/ and the rest is intact."""
        for key, body in self.OTHERS.items():
            sandbox.put(key, body)
        assert publish(repo).code == 0
        change_repository(repo)
        assert publish(repo).code == 0
        assert_bucket_holds(sandbox, changed_repository(), elsewhere=self.OTHERS)
        assert {r.bucket for r in proxy.requests} == {sandbox.bucket}
        assert [r for r in proxy.requests if not r.scope.startswith(PREFIX)] == []
        assert len(proxy.requests) == 6 + 6

    @pytest.mark.parametrize("marketing_has_dags", [False, True], ids=["empty-prefix", "prefix-with-dags"])
    @enforced
    def test_publishing_as_another_team_is_denied(self, publish, repo, sandbox, proxy, marketing_has_dags):
        """Analytics' credentials with --team marketing: denied by IAM, exit 1, nothing written anywhere."""
        before = dict(self.OTHERS) if marketing_has_dags else {}
        for key, body in before.items():
            sandbox.put(key, body)
        run = publish(repo, "marketing")
        operation = "GetObject" if marketing_has_dags else "PutObject"
        assert (run.code, run.out) == (1, [])
        assert run.err.startswith(f"publish failed: An error occurred (AccessDenied) when calling the {operation} operation: ")
        assert run.err.endswith(" (uploads come before deletes: run it again to finish)\n")
        assert sandbox.objects() == before
        writes = [r for r in proxy.requests if r.operation in ("PUT", "DELETE", "POST")]
        assert [r.status for r in writes] == ([] if marketing_has_dags else [403] * len(REPOSITORY))

    @pytest.mark.parametrize("who, widen", [("admin", False), ("analytics", True)], ids=["admin", "analytics-with-widened-policy"])
    @enforced
    def test_control_the_same_publish_succeeds_with_permission(self, publish, repo, sandbox, who, widen):
        """Control: the denied command succeeds for the admin, or for analytics once its policy covers teams/*."""
        if widen:
            documents = sandbox.documents["analytics"]
            widened = documents.policy.replace("/teams/analytics/*", "/teams/*")
            assert widened != documents.policy
            sandbox.put_policy(documents.name, widened)
        run = publish(repo, "marketing", who=who)
        assert (run.code, run.out[-1]) == (0, "uploaded 4, deleted 0, unchanged 0 (6 S3 requests)")
        assert sorted(sandbox.objects("teams/marketing/")) == sorted(["teams/marketing/.dagtool-manifest.json"] + [
            "teams/marketing/" + path for path in REPOSITORY])

    @enforced
    def test_a_key_that_climbs_out_of_the_prefix_stops_the_run_before_any_write(self, publish, published, repo, sandbox, proxy):
        """An object named teams/analytics/../x is refused by name before the first PUT, rather than deleted half-way."""
        sandbox.put(PREFIX + "../stray.py", b"dag = 'stray'\n")
        change_repository(repo)
        run = publish(repo)
        assert (run.code, run.out) == (1, [])
        assert run.err == (f"publish failed: '../stray.py' would leave {PREFIX}: remove that object by hand, "
                           "dagtool will not touch it\n")
        assert [operation for operation, _, _ in operations(proxy)] == ["LIST", "GET"]

    @enforced
    def test_control_unknown_credentials_are_refused(self, publish, repo, sandbox, proxy):
        """Control: requests signed with keys the account does not know are refused, by the lean reader and the client alike."""
        sandbox.credentials["stranger"] = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-real-secret"}
        run = publish(repo, who="stranger")
        assert run.code == 1
        assert run.err.startswith("publish failed: An error occurred (InvalidAccessKeyId) when calling the ListObjectsV2 operation: ")
        assert operations(proxy) == [("LIST", PREFIX, 403)] * 2


class TestRetries:
    """Tests that throttling and 5xx answers are retried with backoff, and that giving up never loses a DAG."""

    FAULTS = {
        "throttled-put": ("PUT", PREFIX + CHANGED[0], 2, SLOW_DOWN),
        "internal-error-put": ("PUT", PREFIX + ADDED[0], 2, INTERNAL_ERROR),
        "internal-error-manifest-put": ("PUT", MANIFEST, 2, INTERNAL_ERROR),
        "throttled-delete": ("DELETE", PREFIX + REMOVED, 2, SLOW_DOWN),
    }

    @pytest.mark.parametrize("operation, key, times, error", FAULTS.values(), ids=FAULTS.keys())
    @enforced
    def test_transient_failures_are_retried_to_completion(self, publish, published, repo, sandbox, proxy, backoffs,
                                                          operation, key, times, error):
        """Each injected failure costs one retry after one backoff; the bucket ends exactly as the repository."""
        change_repository(repo)
        proxy.fail(operation, key, times=times, error=error)
        run = publish(repo)
        assert (run.code, run.err) == (0, "")
        assert run.out == [f"[1/2] uploaded {PREFIX}{CHANGED[0]} (changed)", f"[2/2] uploaded {PREFIX}{ADDED[0]} (new)",
                           f"[1/1] deleted {PREFIX}{REMOVED}", f"uploaded 2, deleted 1, unchanged 2 ({6 + times} S3 requests)"]
        failed = [r for r in proxy.requests if r.injected]
        assert [(r.operation, r.status) for r in failed] == [(operation, error.status)] * times
        assert proxy.count(operation, key) == times + 1 and len(proxy.requests) == 6 + times
        assert len(backoffs) == times and all(delay > 0 for delay in backoffs)
        assert [r.key for r in proxy.requests if r.operation == "DELETE" and not r.injected] == [PREFIX + REMOVED]
        assert_bucket_holds(sandbox, changed_repository())

    READ_FAULTS = {
        "internal-error-list": ("LIST", None, 2, INTERNAL_ERROR, 1 + 3),
        "throttled-manifest-get": ("GET", MANIFEST, 1, SLOW_DOWN, 2 + 2),
        "throttled-manifest-get-twice": ("GET", MANIFEST, 2, SLOW_DOWN, 2 + 3),
    }

    @pytest.mark.parametrize("operation, key, times, error, reads", READ_FAULTS.values(), ids=READ_FAULTS.keys())
    @enforced
    def test_a_failed_lean_read_is_repeated_by_the_retrying_client(self, publish, published, repo, sandbox, proxy, backoffs,
                                                                   operation, key, times, error, reads):
        """The lean reader tries once and hands over; the client reads again, retrying the rest of the failures."""
        change_repository(repo)
        proxy.fail(operation, key, times=times, error=error)
        run = publish(repo)
        assert (run.code, run.err) == (0, "")
        assert run.out[-1] == f"uploaded 2, deleted 1, unchanged 2 ({reads + 4} S3 requests)"
        assert [(r.operation, r.status) for r in proxy.requests if r.injected] == [(operation, error.status)] * times
        assert len([r for r in proxy.requests if r.operation in ("LIST", "GET")]) == reads
        assert len(backoffs) == times - 1
        assert_bucket_holds(sandbox, changed_repository())

    @enforced
    def test_first_publish_with_every_put_throttled_once(self, publish, repo, sandbox, proxy, backoffs):
        """The first four PUTs, in flight together, are throttled; each is retried and all five objects land."""
        proxy.fail("PUT", times=4, error=SLOW_DOWN)
        run = publish(repo)
        assert (run.code, run.out[-1]) == (0, "uploaded 4, deleted 0, unchanged 0 (10 S3 requests)")
        assert (proxy.count("PUT"), len(backoffs)) == (4 + 1 + 4, 4)
        assert_bucket_holds(sandbox, REPOSITORY)

    @enforced
    def test_max_attempts_counts_the_first_attempt(self, publish, published, repo, sandbox, proxy):
        """--max-attempts 3 makes three attempts in all: two failures are survived, the third attempt is the last."""
        (repo / CHANGED[0]).write_bytes(CHANGED[1])
        proxy.fail("PUT", PREFIX + CHANGED[0], times=MAX_ATTEMPTS - 1, error=SLOW_DOWN)
        assert publish(repo).code == 0
        assert proxy.count("PUT", PREFIX + CHANGED[0]) == MAX_ATTEMPTS
        proxy.reset()
        (repo / CHANGED[0]).write_bytes(REPOSITORY[CHANGED[0]])
        proxy.fail("PUT", PREFIX + CHANGED[0], times=MAX_ATTEMPTS, error=SLOW_DOWN)
        assert publish(repo).code == 1
        assert proxy.count("PUT", PREFIX + CHANGED[0]) == MAX_ATTEMPTS

    GIVE_UP = {
        "list": ("LIST", None, INTERNAL_ERROR, "ListObjectsV2"),
        "dag-put": ("PUT", PREFIX + CHANGED[0], SLOW_DOWN, "PutObject"),
        "manifest-put": ("PUT", MANIFEST, INTERNAL_ERROR, "PutObject"),
    }

    @pytest.mark.parametrize("operation, key, error, api", GIVE_UP.values(), ids=GIVE_UP.keys())
    @enforced
    def test_giving_up_deletes_nothing_and_the_next_run_finishes(self, publish, published, repo, sandbox, proxy,
                                                                 operation, key, error, api):
        """More failures than --max-attempts: exit 1 with the reason, no DELETE, every earlier object kept; a rerun completes."""
        change_repository(repo)
        proxy.fail(operation, key, times=MAX_ATTEMPTS + 1, error=error)
        run = publish(repo)
        assert run.code == 1
        assert run.err == (f"publish failed: An error occurred ({error.code}) when calling the {api} operation (reached max retries: "
                           f"{MAX_ATTEMPTS - 1}): {error.message} (uploads come before deletes: run it again to finish)\n")
        lean_attempt = 1 if operation == "LIST" else 0
        assert proxy.count(operation, key) == MAX_ATTEMPTS + lean_attempt and proxy.count("DELETE") == 0
        after = sandbox.objects()
        assert set(published) <= set(after) and after[MANIFEST] == published[MANIFEST]
        assert all(after[k] == body for k, body in published.items() if k != PREFIX + CHANGED[0])

        proxy.reset()
        rerun = publish(repo)
        assert (rerun.code, rerun.out[-1]) == (0, "uploaded 2, deleted 1, unchanged 2 (6 S3 requests)")
        assert_bucket_holds(sandbox, changed_repository())


class TestArguments:
    """Tests that counts which make no sense stop at the command line, with exit status 2 and the option named."""

    @pytest.mark.parametrize("option, value", [("--jobs", "0"), ("--max-attempts", "0"), ("--jobs", "-3"), ("--max-attempts", "two")],
                             ids=["no-jobs", "no-attempts", "negative-jobs", "words"])
    def test_non_positive_counts_are_refused(self, tmp_path, capsys, option, value):
        """A pool of 0 workers or 0 attempts would fail later with a traceback; argparse refuses it up front."""
        with pytest.raises(SystemExit) as caught:
            cli.main(["publish", str(tmp_path), "--team", "analytics", "--bucket", "b", option, value])
        assert caught.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(
            f"argument {option}: {value!r} is not a whole number of at least 1")
