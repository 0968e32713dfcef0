"""Forty independent tasks: each records its own and its supervisor's peak memory, and which pool process ran it."""

import json
import os
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def probe(ti=None, run_id=None):
    # The task runs in a process the supervisor forked; the supervisor runs in a Celery pool process
    # (a Celery pool process), a child of the worker's main process.
    supervisor = os.getppid()
    worker = int(next(l for l in Path(f"/proc/{supervisor}/status").read_text().splitlines() if l.startswith("PPid:")).split()[1])
    record = {"task": ti.task_id, "pid": os.getpid(), "supervisor": supervisor, "task_peak_kib": _peak_kib(os.getpid()),
              "supervisor_peak_kib": _peak_kib(supervisor), "worker_peak_kib": _peak_kib(worker)}
    # The logs folder: the worker's only writable place under its home (its root filesystem is read-only).
    results = Path(os.environ["AIRFLOW_HOME"]) / "logs" / "e2e-results" / run_id
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{ti.task_id}.json").write_text(json.dumps(record))


with DAG(dag_id="analytics_forty", start_date=datetime(2026, 1, 1), schedule=None, catchup=False,
         tags=["analytics"], default_args={"owner": "analytics@example.com"}):
    for number in range(40):
        PythonOperator(task_id=f"probe_{number:02d}", python_callable=probe)
