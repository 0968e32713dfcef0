"""Tests DAG runs on the platform's Airflow: a 40-task run and a dagtool-generated DAG succeed, a failing task posts the
company notifier's message, and pool processes are replaced after the configured number of tasks."""

from __future__ import annotations

import json
from collections import Counter
from statistics import median

from components import capacity
from components.task_metrics import MEMORY_REQUEST

from tests.conftest import stack_config, typed_config
from tests.e2e.conftest import FORTY_RUNS, GENERATED_DAG
from tests.e2e.figures import FIGURES
from tests.e2e.local_airflow import MAX_TASKS_PER_CHILD


def task_states(scenario, dag_id: str) -> Counter:
    run_id = scenario.runs[dag_id]["dag_run_id"]
    rows = scenario.sql(f"SELECT state FROM task_instance WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'")
    return Counter(rows.splitlines())


def probes(scenario, run_id: str) -> list[dict]:
    """What each task of one run of analytics_forty recorded."""
    return [json.loads(p.read_text()) for p in sorted((scenario.airflow.home / "logs" / "e2e-results" / run_id).glob("*.json"))]


def forty_run_ids(scenario) -> list[str]:
    return [run["dag_run_id"] for run in scenario.forty_runs]


def test_forty_task_runs_succeed(scenario):
    """Each run's 40 tasks succeed, each in its own process."""
    assert [run["state"] for run in scenario.forty_runs] == ["success"] * FORTY_RUNS
    for run_id in forty_run_ids(scenario):
        states = Counter(scenario.sql(f"SELECT state FROM task_instance WHERE run_id = '{run_id}'").splitlines())
        assert states == Counter({"success": 40})
        assert len({p["pid"] for p in probes(scenario, run_id)}) == 40


def test_generated_dag_succeeds(scenario):
    """The DAG `dagtool generate` wrote from the dbt manifest runs every model's task."""
    assert scenario.runs[GENERATED_DAG]["state"] == "success"
    states = task_states(scenario, GENERATED_DAG)
    assert set(states) == {"success"} and sum(states.values()) >= 2


def test_failing_tasks_post_the_company_notifier_message(scenario):
    """The failed run of marketing_failing posts the notifier's template, through the connection from Secrets Manager."""
    assert scenario.runs["marketing_failing"]["state"] == "failed"
    assert task_states(scenario, "marketing_failing") == Counter({"failed": 3})
    run_id = scenario.runs["marketing_failing"]["dag_run_id"]
    texts = [m.get("text", "") for m in scenario.webhook.messages]
    assert any(t.startswith(f":red_circle: *marketing_failing* failed in run `{run_id}`") and "Owner: marketing-data@example.com" in t
               for t in texts), texts


def test_pool_processes_are_replaced_after_max_tasks_per_child(scenario):
    """No pool process (the task supervisor) runs more tasks than the Celery module allows, so the 40 tasks need several."""
    per_supervisor = Counter(p["supervisor"] for run_id in forty_run_ids(scenario) for p in probes(scenario, run_id))
    assert max(per_supervisor.values()) <= MAX_TASKS_PER_CHILD
    assert len(per_supervisor) >= 40 * FORTY_RUNS // MAX_TASKS_PER_CHILD


def test_memory_fits_the_capacity_contract_and_figures(scenario):
    """The worker's main process, a supervisor and a task stay within what prod's memory contract gives each; the figures
    (medians over the runs) are kept."""
    cfg = typed_config(stack_config("prod"))
    runs = forty_run_ids(scenario)
    records = [p for run_id in runs for p in probes(scenario, run_id)]
    peak = {kind: max(p[f"{kind}_peak_kib"] for p in records) / 1024 for kind in ("worker", "supervisor", "task")}
    assert peak["worker"] < capacity.WORKER_MAIN_PROCESS_MIB
    assert peak["supervisor"] < cfg.airflow.workers.max_memory_per_child_kib / 1024
    assert peak["task"] < cfg.airflow.workers.task_memory_mib
    first_task, duration = [], []
    for run_id in runs:
        first_task.append(float(scenario.sql(f"SELECT extract(epoch FROM min(start_date)) FROM task_instance WHERE run_id = '{run_id}'"))
                          - scenario.triggered[run_id])
        duration.append(float(scenario.sql(f"SELECT extract(epoch FROM end_date - start_date) FROM dag_run WHERE run_id = '{run_id}'")))
    FIGURES.update({
        f"trigger to first task running, median of {len(runs)} runs (s)": round(median(first_task), 2),
        f"40-task run, median of {len(runs)} runs (s)": round(median(duration), 2),
        **{f"{kind} peak, median / max (MiB)": f"{median(p[f'{kind}_peak_kib'] for p in records) / 1024:.0f} / {peak[kind]:.0f}"
           for kind in ("worker", "supervisor", "task")},
    })


def test_task_logs_reach_the_log_bucket(scenario):
    """Remote logging, with no connection (the pod's role), writes every task's log to the bucket's logs/ prefix."""
    import boto3

    folder = scenario.airflow.rendered_cfg().get("logging", "remote_base_log_folder").removeprefix("s3://")
    bucket, _, prefix = folder.partition("/")
    s3 = boto3.client("s3", endpoint_url=scenario.airflow.endpoints.aws, region_name="eu-west-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    for run_id in forty_run_ids(scenario):
        assert len([k for k in keys if "dag_id=analytics_forty" in k and run_id in k]) == 40, keys[:5]


def test_exporter_fits_its_memory_request(scenario):
    """The task metrics exporter's peak resident memory stays under its Deployment's request."""
    request_mib = int(MEMORY_REQUEST.removesuffix("Mi"))
    assert 0 < scenario.exporter_peak_kib / 1024 < request_mib
    FIGURES["task metrics exporter peak (MiB)"] = round(scenario.exporter_peak_kib / 1024)
