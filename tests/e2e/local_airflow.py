"""The platform's Airflow, run on this machine from what the real chart renders for the prod stack.

`airflow.cfg`, `airflow_local_settings.py` and the components' commands and environments are the rendered ones; the
Celery module is the program's, at the chart's mount path. What cannot be the same is changed in one place, swaps()
and environment_swaps() (the endpoints, the paths under the chart's AIRFLOW_HOME, a log-server port per triggerer on a
shared host), plus the secrets' values (the suite's own), and the replicas of the API server and the worker
(SINGLE: a 2-core machine). A test asserts that nothing else of airflow.cfg differs.
"""

from __future__ import annotations

import configparser
import io
import os
import secrets
import shutil
import signal
import string
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from components import celery_config
from tests.e2e.services import free_port, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
AIRFLOW_VENV = REPOSITORY / ".venv-airflow"
CHART_HOME = "/opt/airflow"  # the chart's AIRFLOW_HOME, under which it mounts everything
# The Airflow release's Deployments the suite runs, by their container's name. The control plane runs as many replicas as
# rendered (prod: two schedulers, two triggerers, one DAG processor), so that losing one of two is seen; the API server
# and the worker one each, for two cores.
CONTROL_PLANE = ("scheduler", "dag-processor", "triggerer")
SINGLE = ("api-server", "worker")
# Airflow exports every second (the stack: every 30 s) so that a short run yields many samples.
EXPORT_INTERVAL_MS = 1000
# A pool process is replaced after this many tasks (prod: 200), so that a 40-task run shows it.
MAX_TASKS_PER_CHILD = 5
SECRET_KEYS = {
    ("platform-airflow-metadata", "connection"): "db", ("platform-airflow-metadata", "kedaConnection"): "db",
    ("platform-airflow-broker", "connection"): "broker", ("platform-airflow-fernet-key", "fernet-key"): "fernet",
    ("platform-airflow-api-secret-key", "api-secret-key"): "token", ("platform-airflow-jwt-secret", "jwt-secret"): "token",
    ("platform-airflow-admin-password", "password"): "admin",
    # The OIDC client's: the scenario logs in with the admin's password (tests/e2e/test_sso_login.py logs in through a provider).
    ("platform-airflow-sso", "client-secret"): "token",
}


def _alphanumeric(length: int) -> str:
    """A password as the program generates them (RandomPassword, special=False): one starting with "-" would be taken
    for an option by the create-user Job's command line."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


@dataclass(frozen=True)
class Endpoints:
    database: str
    broker: str
    aws: str
    otlp_port: int
    api_port: int


def swaps(endpoints: Endpoints, rendered: configparser.ConfigParser, home: Path) -> dict[tuple[str, str], str]:
    """Every option of airflow.cfg the suite runs differently from the rendered one, with its value here."""
    changed = {
        ("core", "execution_api_server_url"): f"http://127.0.0.1:{endpoints.api_port}/execution/",
        ("api", "port"): str(endpoints.api_port),
        ("metrics", "otel_host"): "127.0.0.1",
        ("metrics", "otel_port"): str(endpoints.otlp_port),
        ("metrics", "otel_interval_milliseconds"): str(EXPORT_INTERVAL_MS),
    }
    for section in rendered.sections():
        for key, value in rendered.items(section, raw=True):
            if value.startswith(CHART_HOME + "/"):
                changed[(section, key)] = str(home) + value[len(CHART_HOME):]
    return changed


def environment_swaps(endpoints: Endpoints, component: str) -> dict[str, str]:
    """What the suite adds to a process's environment: the AWS endpoint (moto stands for S3 and Secrets Manager) and the
    credentials IRSA would give, and the environment's Airflow on PATH; a triggerer's log server gets a port of its own,
    as each pod has its own address."""
    swapped = {"AWS_ENDPOINT_URL": endpoints.aws, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "PATH": f"{AIRFLOW_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}", "PYTHONUNBUFFERED": "1"}
    if component == "triggerer":
        swapped["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(free_port())
    return swapped


def read_cfg(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keep the keys as written
    parser.read_string(text)
    return parser


def write_cfg(parser: configparser.ConfigParser) -> str:
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def main_container(workload: dict, name: str) -> dict:
    spec = workload["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else spec["template"]
    [found] = [c for c in template["spec"]["containers"] if c["name"] == name]
    return found


# What a pod of the platform may write, as its securityContext (readOnlyRootFilesystem) and emptyDirs leave it: /tmp,
# and the container's other writable mounts (all emptyDirs: the log writers' $AIRFLOW_HOME/logs, the team-roles Job's
# whole home); everything else, AIRFLOW_HOME included, is read-only. Each process runs in a mount namespace of its own
# (as each pod has its own filesystem): a fresh /tmp, its home read-only at the same path with the writable mounts bound
# over it (the harness reads their files from outside), then the whole root remounted read-only.
READ_ONLY_ROOT = """set -e
home=$1; shift
writable=""
while [ "$1" != "--" ]; do writable="$writable $1"; shift; done
shift
stash=$(mktemp -d /run/airflow-home.XXXXXX 2>/dev/null || mktemp -d /dev/shm/airflow-home.XXXXXX)
mount --bind "$home" "$stash"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p "$home"
mount --bind "$stash" "$home"
home_read_only=yes
for path in $writable; do
  if [ "$path" = "$home" ]; then home_read_only=no; continue; fi
  mkdir -p "$path"
  mount --bind "$path" "$path"
done
if [ "$home_read_only" = yes ]; then mount -o remount,bind,ro "$home"; fi
mount -o remount,bind,ro /
cd "$home"
exec "$@"
"""


def writable_mounts(container: dict, home: Path) -> list[str]:
    """The container's writable mounts other than /tmp, at their places under the suite's home."""
    paths = []
    for mount in container.get("volumeMounts", []):
        where = mount["mountPath"]
        if mount.get("readOnly") or where == "/tmp":
            continue
        if not (where == CHART_HOME or where.startswith(CHART_HOME + "/")):
            raise ValueError(f"{container['name']} writes {where}, outside {CHART_HOME}: the suite does not lay that out")
        paths.append(str(home) + where[len(CHART_HOME):])
    return paths


def read_only_root(command: list[str], home: Path, writable: list[str]) -> list[str]:
    """`command` as a pod with a read-only root runs it, writing only /tmp and `writable` (unshare: root's own mount
    namespace, or a user namespace's when not root)."""
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT, "sh", str(home), *writable, "--", *command]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def signal(self, number: int) -> None:
        os.killpg(self.popen.pid, number)

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGCONT)  # a stopped process would not see the SIGTERM
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)


@dataclass
class LocalAirflow:
    """AIRFLOW_HOME laid out as the chart mounts it, and the components started with the chart's commands."""

    home: Path
    endpoints: Endpoints
    release: Any                      # tools.render.RenderedRelease of the Airflow chart
    program_objects: list[dict]       # the program's own Kubernetes objects
    processes: list[Process] = field(default_factory=list)
    secret_values: dict[str, str] = field(default_factory=dict)
    _token: str = ""

    def __post_init__(self) -> None:
        from cryptography.fernet import Fernet
        self.secret_values = {"db": self.endpoints.database, "broker": self.endpoints.broker,
                              "fernet": Fernet.generate_key().decode(), "token": secrets.token_urlsafe(32),
                              "admin": _alphanumeric(24)}

    # --- files -------------------------------------------------------------------------------------------
    @property
    def config_map(self) -> dict:
        return self.release.named("ConfigMap", "airflow-config")["data"]

    def rendered_cfg(self) -> configparser.ConfigParser:
        return read_cfg(self.config_map["airflow.cfg"])

    def running_cfg(self) -> configparser.ConfigParser:
        return read_cfg((self.home / "airflow.cfg").read_text())

    def celery_module(self) -> str:
        """The program's Celery module with the suite's MAX_TASKS_PER_CHILD, generated by the same function."""
        [config_map] = [o for o in self.program_objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "platform-airflow-celery-config"]
        declared = config_map["data"][celery_config.FILE_NAME]
        memory = int(declared.split('"worker_max_memory_per_child": ')[1].split(",")[0])
        return celery_config.celery_config_module(MAX_TASKS_PER_CHILD, memory)

    def lay_out(self, dags: Path, shared: list[Path]) -> None:
        """airflow.cfg (swapped), the local settings and the Celery module at the chart's mount paths, the DAG folder as
        objinsync fills it (teams/ -> dags/), the shared modules in the plugins folder."""
        rendered = self.rendered_cfg()
        for (section, key), value in swaps(self.endpoints, rendered, self.home).items():
            if not rendered.has_section(section):
                rendered.add_section(section)
            rendered.set(section, key, value)
        (self.home / "config").mkdir(parents=True, exist_ok=True)
        (self.home / "airflow.cfg").write_text(write_cfg(rendered))
        (self.home / "config" / "airflow_local_settings.py").write_text(self.config_map["airflow_local_settings.py"])
        (self.home / "config" / celery_config.FILE_NAME).write_text(self.celery_module())
        shutil.copytree(dags, self.home / "dags", dirs_exist_ok=True)
        (self.home / "plugins").mkdir(exist_ok=True)
        for module in shared:
            shutil.copy(module, self.home / "plugins" / module.name)
        (self.home / "logs").mkdir(exist_ok=True)

    # --- processes ---------------------------------------------------------------------------------------
    def environment(self, container: dict) -> dict[str, str]:
        """The container's environment as rendered, secrets resolved to the suite's values, plus environment_swaps."""
        env = {"HOME": str(self.home), "LANG": "C.UTF-8"}
        for item in container.get("env", []):
            if "value" in item:
                value = item["value"]
                env[item["name"]] = str(self.home) + value[len(CHART_HOME):] if value.startswith(CHART_HOME) else value
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self.secret_values[SECRET_KEYS[(ref["name"], ref["key"])]]
        env.update(environment_swaps(self.endpoints, container["name"]))
        return env

    def command(self, container: dict) -> list[str]:
        return [*(container.get("command") or []), *(container.get("args") or [])]

    def start(self, name: str, container: dict, replica: int = 0) -> Process:
        log = self.home / "logs" / f"{name}-{replica}.log"
        command = read_only_root(self.command(container), self.home, writable_mounts(container, self.home))
        popen = subprocess.Popen(command, env=self.environment(container), cwd=self.home,
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(f"{name}-{replica}", popen, log)
        self.processes.append(process)
        return process

    def run_job(self, name: str, container: dict, timeout: float = 300) -> subprocess.CompletedProcess:
        command = read_only_root(self.command(container), self.home, writable_mounts(container, self.home))
        result = subprocess.run(command, env=self.environment(container), cwd=self.home,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise RuntimeError(f"{name} exited {result.returncode}: {(result.stdout + result.stderr)[-3000:]}")
        return result

    def workload(self, kind: str, name: str) -> dict:
        return self.release.named(kind, name)

    def program_job(self, prefix: str) -> dict:
        [job] = [o for o in self.program_objects if o["kind"] == "Job" and o["metadata"]["name"].startswith(prefix)]
        return job

    def start_components(self) -> None:
        for component in CONTROL_PLANE + SINGLE:
            deployment = self.workload("Deployment", f"airflow-{component}")
            container = main_container(deployment, component)
            for replica in range(deployment["spec"]["replicas"] if component in CONTROL_PLANE else 1):
                self.start(component, container, replica)

    def running(self, name: str) -> list[Process]:
        return [p for p in self.processes if p.name.startswith(name + "-") and p.popen.poll() is None]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    # --- the REST API ------------------------------------------------------------------------------------
    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.endpoints.api_port}"

    def token(self) -> str:
        response = requests.post(f"{self.api}/auth/token", json={"username": "admin", "password": self.secret_values["admin"]}, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def call(self, method: str, path: str, **kwargs) -> Any:
        response = requests.request(method, f"{self.api}/api/v2{path}", headers={"Authorization": f"Bearer {self._token}"},
                                    timeout=60, **kwargs)
        response.raise_for_status()
        return response.json()

    def log_tail(self, name: str, lines: int = 40) -> str:
        return "\n".join(f"--- {p.log.name}\n" + "\n".join(p.log.read_text(errors="replace").splitlines()[-lines:])
                         for p in self.processes if p.name.startswith(name))

    def wait_ready(self, dag_ids: list[str], timeout: float = 240) -> None:
        wait_for(lambda: _ok(f"{self.api}/api/v2/monitor/health"), "the API server answering", timeout)
        self._token = self.token()
        wait_for(lambda: all(self._dag_known(d) for d in dag_ids), f"the DAGs {dag_ids} parsed", timeout, interval=2)

    def _dag_known(self, dag_id: str) -> bool:
        response = requests.get(f"{self.api}/api/v2/dags/{dag_id}", headers={"Authorization": f"Bearer {self._token}"}, timeout=30)
        return response.status_code == 200

    def trigger(self, dag_id: str) -> tuple[str, float]:
        """Unpauses the DAG and triggers a run; returns the run id and when it was triggered."""
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        at = time.time()
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})
        return run["dag_run_id"], at

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        state: dict = {}

        def finished() -> bool:
            state.update(self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))
            return state["state"] in {"success", "failed"}

        wait_for(finished, f"run {run_id} of {dag_id} finishing", timeout, interval=1)
        return state


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
