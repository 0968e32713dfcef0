"""The end-to-end suite's one run of the platform's Airflow: started once, driven through one scenario, then inspected by
the tests. The scenario's phases, in order: healthy (a 40-task run and a dagtool-generated DAG succeed); unhealthy
(a team's tasks fail, a task waits on a queue no worker serves, a DAG file breaks, the DAG processor freezes, the
database holds the scheduler up); one scheduler stops, then the other with the triggerer and the task metrics exporter.; one scheduler stops, then the other.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from components.task_metrics_exporter import PARSE_AGE
from tests.e2e.figures import FIGURES
from tests.e2e.local_airflow import AIRFLOW_VENV, CONTROL_PLANE, REPOSITORY, Endpoints, LocalAirflow, main_container
from tests.e2e.otlp_receiver import Receiver
from tests.e2e.services import Postgres, Redis, free_port, peak_kib, wait_for

DAGS = Path(__file__).parent / "dags"
NOTIFIER = REPOSITORY / "dagtool" / "airflow_platform_notify.py"
DBT_MANIFEST = REPOSITORY / "tests" / "fixtures" / "dbt" / "manifest.json"
GENERATED_DAG = "analytics_dbt_sales"
REGION = "eu-west-1"
FORTY_RUNS = 3  # the figures are medians over these runs
# The suite's alerting.dagParseSeconds: files are re-parsed every 30 s while the DAG processor keeps up.
PARSE_AGE_SECONDS = 90
# The suite's alerting.schedulerLoopSeconds, and how long each lock that holds the scheduler up lasts.
LOOP_SECONDS, LOCK_SECONDS = 2, 4
# What the scenario writes over a DAG file after the healthy phase (with the words Airflow's safe mode looks for).
BROKEN_DAG = "from airflow.sdk import DAG\n\nthis is not Python\n"


class Webhook:
    """The Slack webhook stand-in: records every message posted to it."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                webhook.messages.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/XXXX"

    def stop(self) -> None:
        self._server.shutdown()


@dataclass
class Scenario:
    """What happened, with the moments the phases changed (time.time())."""

    airflow: LocalAirflow
    postgres: Postgres
    receiver: Receiver
    webhook: Webhook
    marks: dict[str, float] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)     # dag_id -> its (last) run as the API returned it
    triggered: dict[str, float] = field(default_factory=dict)  # run id -> when it was triggered
    forty_runs: list[dict] = field(default_factory=list)
    exporter_peak_kib: int = 0

    def sql(self, statement: str) -> str:
        return self.postgres.sql(statement)


def _generate_dbt_dag(directory: Path) -> None:
    """One of the files `dagtool generate` writes from the dbt manifest, as a team would publish it."""
    out = directory.parent / "generated"
    subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-m", "airflow_platform_dagtool", "generate", str(DBT_MANIFEST),
                    "--team", "analytics", "--owner", "analytics@example.com", "--dbt-command", "true", "--out", str(out)],
                   check=True, capture_output=True, cwd=REPOSITORY / "dagtool", env={"PYTHONPATH": str(REPOSITORY / "dagtool"), "PATH": "/usr/bin:/bin"})
    shutil.copy(out / f"{GENERATED_DAG}.py", directory / f"{GENERATED_DAG}.py")


def _moto(airflow: LocalAirflow, webhook: Webhook) -> None:
    """S3 holds the remote logs, Secrets Manager the notifier's connection, as in the cloud."""
    cfg = airflow.rendered_cfg()
    bucket = cfg.get("logging", "remote_base_log_folder").removeprefix("s3://").split("/")[0]
    prefix = json.loads(cfg.get("secrets", "backend_kwargs"))["connections_prefix"]
    session = dict(endpoint_url=airflow.endpoints.aws, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    boto3.client("s3", **session).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    boto3.client("secretsmanager", **session).create_secret(
        Name=f"{prefix}/platform_slack", SecretString=json.dumps({"conn_type": "slackwebhook", "password": webhook.url}))


def _start_exporter(airflow: LocalAirflow) -> None:
    """The program's task metrics Deployment: its script at its mount path under the suite's home (which the process sees
    read-only: /tmp, where the suite's folders are, is the process's own), its environment."""
    [deployment] = [o for o in airflow.program_objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "airflow-task-metrics"]
    [config_map] = [o for o in airflow.program_objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "airflow-task-metrics"]
    container = main_container(deployment, "exporter")
    mount = container["volumeMounts"][0]["mountPath"]
    local = airflow.home / "task-metrics" / mount.strip("/")
    local.mkdir(parents=True, exist_ok=True)
    for name, source in config_map["data"].items():
        (local / name).write_text(source)
    command = [part.replace(mount, str(local)) for part in airflow.command(container)]
    overrides = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{airflow.endpoints.otlp_port}/v1/metrics",
                 "AIRFLOW_PLATFORM_INTERVAL_SECONDS": "1"}
    airflow.start("task-metrics", {**container, "command": command, "args": [],
                                   "env": [e for e in container["env"] if e["name"] not in overrides]
                                   + [{"name": k, "value": v} for k, v in overrides.items()]})


def _wait_samples_above(receiver: Receiver, name: str, threshold: float, since: float, count: int) -> None:
    """Until `count` exports of `name` have been above `threshold`: long enough for the alert's `for` in the replay."""
    wait_for(lambda: sum(s.value > threshold for s in receiver.series(name, since=since)) >= count,
             f"{count} exports of {name} above {threshold}", timeout=240, interval=2)


def _hold_scheduler_up(postgres: Postgres, stop: threading.Event) -> None:
    """Two sessions take turns locking dag_run, which every scheduler loop reads: each loop waits for a lock to end."""
    def locker() -> None:
        while not stop.is_set():
            postgres.sql(f"BEGIN; LOCK TABLE dag_run IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({LOCK_SECONDS}); COMMIT;")
    for _ in range(2):
        threading.Thread(target=locker, daemon=True).start()


def _wait_queued_for(scenario: Scenario, dag_id: str, seconds: float) -> None:
    def waited() -> bool:
        age = scenario.sql(f"SELECT coalesce(extract(epoch FROM now() - min(queued_dttm)), 0) FROM task_instance "
                           f"WHERE dag_id = '{dag_id}' AND state = 'queued'")
        return float(age) > seconds
    wait_for(waited, f"a task of {dag_id} queued for {seconds:.0f} s", timeout=seconds + 120, interval=2)


@pytest.fixture(scope="session")
def scenario(rendering, tmp_path_factory) -> Scenario:
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.fail(f"{AIRFLOW_VENV} is missing: `make test` installs it from requirements-e2e.txt")
    from moto.server import ThreadedMotoServer
    from tools import render

    prod = rendering("prod")
    root = tmp_path_factory.mktemp("e2e")
    postgres, redis = Postgres().start(), Redis(root / "redis").start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    receiver = Receiver(free_port()).start()
    webhook = Webhook()
    endpoints = Endpoints(database=postgres.url, broker=redis.url, aws=f"http://127.0.0.1:{moto._port}",
                          otlp_port=receiver.port, api_port=free_port())
    airflow = LocalAirflow(root / "airflow", endpoints, prod.releases["airflow"], render.program_objects(prod.plan))
    dags = root / "dags"
    shutil.copytree(DAGS, dags)
    _generate_dbt_dag(dags / "analytics")
    airflow.lay_out(dags, [NOTIFIER])
    scenario = Scenario(airflow, postgres, receiver, webhook)
    try:
        _moto(airflow, webhook)
        # The chart's Jobs, then the program's team-roles Job, as they run on a release.
        airflow.run_job("migrate", main_container(airflow.workload("Job", "airflow-run-airflow-migrations"), "run-airflow-migrations"))
        airflow.run_job("create-user", main_container(airflow.workload("Job", "airflow-create-user"), "create-user"))
        roles = airflow.program_job("airflow-team-roles")
        airflow.run_job("team-roles", main_container(roles, "team-roles"))
        scenario.marks["start"] = time.time()
        airflow.start_components()
        _start_exporter(airflow)
        airflow.wait_ready(["analytics_forty", GENERATED_DAG, "marketing_failing", "finance_unserved", "analytics_breaks"])
        scenario.marks["ready"] = time.time()

        for dag_id in ["analytics_forty"] * FORTY_RUNS + [GENERATED_DAG]:
            run_id, triggered = airflow.trigger(dag_id)
            scenario.triggered[run_id] = triggered
            scenario.runs[dag_id] = airflow.wait_run(dag_id, run_id)
            if dag_id == "analytics_forty":
                scenario.forty_runs.append(scenario.runs[dag_id])
        scenario.marks["healthy_end"] = time.time()

        failing, _ = airflow.trigger("marketing_failing")
        airflow.trigger("finance_unserved")
        (airflow.home / "dags" / "analytics" / "analytics_breaks.py").write_text(BROKEN_DAG)
        scenario.runs["marketing_failing"] = airflow.wait_run("marketing_failing", failing)
        wait_for(lambda: webhook.messages, "the notifier's message", timeout=120)
        _wait_queued_for(scenario, "finance_unserved", 75)
        # The replay turns each export into 30 s: 20 exports for AirflowDagImportErrors' 10m, 10 for AirflowDagParseSlow's 5m.
        _wait_samples_above(receiver, "airflow_dag_processing_import_errors", 0, scenario.marks["healthy_end"], 25)
        # DAG processors that parse nothing (frozen, as ones starved of CPU or stuck on a file would): every DAG goes stale.
        processors = airflow.running("dag-processor")
        scenario.marks["dag_processor_frozen"] = time.time()
        for processor in processors:
            processor.signal(signal.SIGSTOP)
        _wait_samples_above(receiver, PARSE_AGE, PARSE_AGE_SECONDS, time.time(), 15)
        for processor in processors:
            processor.signal(signal.SIGCONT)
        scenario.marks["unhealthy_end"] = time.time()
        # A database that makes every scheduler loop slow: 20 exports for AirflowSchedulerLoopSlow's 10m, and some, from
        # each of the two schedulers.
        release = threading.Event()
        _hold_scheduler_up(postgres, release)
        _wait_samples_above(receiver, "airflow_scheduler_scheduler_loop_duration", LOOP_SECONDS * 1000, time.time(), 2 * 25)
        scenario.marks["database_slow_end"] = time.time()
        release.set()
        time.sleep(LOCK_SECONDS + 1)

        # One of the two replicas of each replicated control-plane component goes, then the last scheduler and triggerer,
        # and the exporter.
        for component in CONTROL_PLANE:
            replicas = airflow.running(component)
            if len(replicas) > 1:
                replicas[0].stop()
        scenario.marks["one_of_each_stopped"] = time.time()
        time.sleep(30)
        [exporter] = airflow.running("task-metrics")
        scenario.exporter_peak_kib = peak_kib(exporter.popen.pid)
        for process in (*airflow.running("scheduler"), *airflow.running("triggerer"), exporter):
            process.stop()
        scenario.marks["control_plane_stopped"] = time.time()
        time.sleep(5)
        # The tests read the DB, the receiver and the files: the rest of the suite need not share the machine with Airflow.
        airflow.stop()
        yield scenario
    except Exception as error:
        raise RuntimeError(f"{error}\n{airflow.log_tail('')}") from error
    finally:
        airflow.stop()
        for server in (receiver, webhook, moto):
            server.stop()
        redis.stop()
        postgres.stop()


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.write_sep("-", "end-to-end figures (this run)")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
