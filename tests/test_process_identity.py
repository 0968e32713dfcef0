"""Tests the airflow_local_settings.py the platform ships: every process, forked ones too, exports its own identity."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from components.process_identity import SOURCE
from tests.e2e.local_airflow import AIRFLOW_VENV

# Runs the module, then forks: each process prints the OTEL_RESOURCE_ATTRIBUTES it would create its meter with.
PROBE = SOURCE + '''
print(os.getpid(), os.environ["OTEL_RESOURCE_ATTRIBUTES"], flush=True)
child = os.fork()
if child == 0:
    print(os.getpid(), os.environ["OTEL_RESOURCE_ATTRIBUTES"], flush=True)
    os._exit(0)
os.waitpid(child, 0)
'''


def run_probe(attributes: str) -> list[tuple[str, str]]:
    env = {**os.environ, "OTEL_RESOURCE_ATTRIBUTES": attributes}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    return [tuple(line.split(" ", 1)) for line in out.splitlines()]


def test_each_process_names_its_host_and_pid():
    """The parent and its forked child each carry service.instance.id=<host>:<own pid>."""
    lines = run_probe("")
    assert len(lines) == 2 and lines[0][0] != lines[1][0]
    assert [attributes for _, attributes in lines] == [f"service.instance.id={socket.gethostname()}:{pid}" for pid, _ in lines]


def test_other_attributes_are_kept_and_an_inherited_id_replaced():
    """Attributes set by the pod stay; an instance id set before is replaced, not duplicated."""
    [(pid, attributes), _] = run_probe("deployment.environment=prod,service.instance.id=stale")
    assert attributes == f"deployment.environment=prod,service.instance.id={socket.gethostname()}:{pid}"


# The module, then a meter as Airflow creates it, then a fork: each process prints the identity its meter exports under.
INHERITED_METER_PROBE = SOURCE + '''
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

provider = MeterProvider(resource=Resource.create())


def exported_identity():
    print(os.getpid(), provider._sdk_config.resource.attributes["service.instance.id"], flush=True)


exported_identity()
child = os.fork()
if child == 0:
    exported_identity()
    os._exit(0)
os.waitpid(child, 0)
'''


def test_a_meter_inherited_through_fork_exports_the_childs_identity():
    """With Airflow's OpenTelemetry SDK, a meter created before a fork exports <host>:<child pid> in the child, not the
    random UUID the SDK would detect after the fork, nor the parent's identity."""
    python = AIRFLOW_VENV / "bin" / "python"
    assert python.exists(), f"{AIRFLOW_VENV} is missing: `make test` installs it from requirements-e2e.txt"
    out = subprocess.run([str(python), "-c", INHERITED_METER_PROBE], env={**os.environ, "OTEL_RESOURCE_ATTRIBUTES": ""},
                         capture_output=True, text=True, check=True).stdout
    lines = [line.split(" ", 1) for line in out.splitlines()]
    assert len(lines) == 2 and lines[0][0] != lines[1][0]
    assert [identity for _, identity in lines] == [f"{socket.gethostname()}:{pid}" for pid, _ in lines]
