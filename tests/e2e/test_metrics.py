"""Tests what Airflow and the task metrics exporter really emit: every series an Airflow alert reads is produced, replicas
are told apart, and `promtool test rules` with the platform's rules, fed the recorded series, fires the alerts of each
unhealthy phase and none of a healthy run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.alerting import WORKER_DEPLOYMENT, rule_groups
from components.names import AIRFLOW_NAMESPACE
from components.task_metrics_exporter import OLDEST_QUEUED
from tests.conftest import stack_config, typed_config
from tests.e2e.conftest import LOOP_SECONDS, PARSE_AGE_SECONDS
from tests.e2e.replay import SCRAPE_SECONDS, input_series, scrape_index
from tests.test_alert_tools import run, write_yaml

METRIC = re.compile(r"\b(airflow_[a-z0-9_]+)")
# The suite's phases are short: the prod rules, with these thresholds changed.
SUITE_CONFIG = {"airflow-platform:alerting": {"queuedTaskSlaMinutes": 1, "teamTaskFailuresPerHour": 2,
                                              "dagParseSeconds": PARSE_AGE_SECONDS, "schedulerLoopSeconds": LOOP_SECONDS}}


KUBE_METRIC = re.compile(r"\b(kube_[a-z0-9_]+)")
AVAILABLE_WORKERS = f'kube_deployment_status_replicas_available{{namespace="{AIRFLOW_NAMESPACE}", deployment="{WORKER_DEPLOYMENT}"}}'


def suite_rules(kube_metrics: frozenset[str] = frozenset()) -> list[dict]:
    config = stack_config("prod")
    for key, changes in SUITE_CONFIG.items():
        config[key] = {**config.get(key, {}), **changes}
    groups = rule_groups(typed_config(config))
    # There is no Kubernetes here: a rule on kube-state-metrics joins only when the test stands in for its series; the
    # promtool unit tests cover them all (tests/alerts/).
    return [{"name": g["name"], "rules": [r for r in g["rules"] if set(KUBE_METRIC.findall(r["expr"])) <= kube_metrics]}
            for g in groups]


def read_metrics(groups: list[dict]) -> set[str]:
    return {name for g in groups for r in g["rules"] for name in METRIC.findall(r["expr"])}


def available_workers(scenario, end_mark: str, gone_mark: str | None) -> dict[str, str]:
    """kube-state-metrics' series for the worker Deployment, standing in: one worker available until `gone_mark` (if
    any), then none, over the replay of the run up to `end_mark`."""
    start = scenario.marks["ready"]
    length = scrape_index(start, scenario.marks[end_mark]) + 1
    gone = scrape_index(start, scenario.marks[gone_mark]) if gone_mark else length
    return {"series": AVAILABLE_WORKERS, "values": " ".join("1" if index < gone else "0" for index in range(length))}


def fired(scenario, tmp_path: Path, end_mark: str, eval_mark: str, delay_scrapes: int = 0,
          kube_series: tuple[dict[str, str], ...] = ()) -> dict[str, list[str]]:
    """Alert name -> the label sets promtool saw firing at `eval_mark` (+ delay), replaying the run up to `end_mark`
    (with `kube_series` standing in for kube-state-metrics)."""
    groups = suite_rules(frozenset(s["series"].split("{")[0] for s in kube_series))
    start = scenario.marks["ready"]
    series = input_series(scenario.receiver.samples, start, scenario.marks[end_mark], read_metrics(groups)) + list(kube_series)
    at = (scrape_index(start, scenario.marks[eval_mark]) + delay_scrapes) * SCRAPE_SECONDS
    names = [r["alert"] for g in groups for r in g["rules"]]
    write_yaml(tmp_path / "rules.yml", {"groups": groups})
    write_yaml(tmp_path / "replay_test.yml", {
        "rule_files": ["rules.yml"], "evaluation_interval": f"{SCRAPE_SECONDS}s",
        "tests": [{"interval": f"{SCRAPE_SECONDS}s", "input_series": series,
                   "alert_rule_test": [{"eval_time": f"{at}s", "alertname": name, "exp_alerts": []} for name in names]}]})
    result = run("promtool", "test", "rules", "replay_test.yml", cwd=tmp_path)
    output = result.stdout + result.stderr
    found: dict[str, list[str]] = {}
    for block in re.split(r"(?=alertname: )", output)[1:]:
        name = re.match(r"alertname: (\w+)", block).group(1)
        found[name] = re.findall(r"Labels:\{([^}]*)\}", block)
    if result.returncode and not found:
        pytest.fail(f"promtool failed without firing alerts: {output[-2000:]}")
    return found


def test_every_series_an_alert_reads_is_produced(scenario):
    """Each airflow_* metric of the rules reached the receiver, named as the collector names it."""
    missing = read_metrics(suite_rules()) - scenario.receiver.names()
    assert not missing, f"never emitted: {sorted(missing)}"


@pytest.mark.parametrize("job, replicas", [("scheduler", 2), ("triggerer", 2), ("dag_processor", 1)])
def test_every_process_exports_under_its_own_instance(scenario, job, replicas):
    """Every process exports as <host>:<pid>, forked ones too, and exactly the replicas the prod render runs of each
    control-plane component heartbeat (the DAG processor's parsing processes export a copy of its counter, which never
    rises)."""
    samples = scenario.receiver.series(f"airflow_{job}_heartbeat_total", since=scenario.marks["ready"])
    values: dict[str, set[float]] = {}
    for sample in samples:
        values.setdefault(sample.label("instance"), set()).add(sample.value)
    rising = {instance for instance, seen in values.items() if len(seen) > 1}
    assert all(re.fullmatch(r".+:\d+", instance) for instance in values), sorted(values)
    assert len(rising) == replicas, sorted(values)


def test_api_server_workers_are_told_apart(scenario):
    """The API server's worker processes export apart too: more instances of job Airflow than the components run."""
    instances = {s.label("instance") for s in scenario.receiver.samples if s.label("job") == "Airflow"}
    assert len(instances) > 6, instances


def test_a_healthy_run_fires_nothing(scenario, tmp_path):
    """Up to the end of the healthy phase, no alert fires."""
    assert fired(scenario, tmp_path, "healthy_end", "healthy_end") == {}


def test_failing_tasks_an_unserved_queue_and_a_broken_file_fire(scenario, tmp_path):
    """Before the DAG processor freezes: the team's failures, the task nobody serves, and the broken DAG file."""
    alerts = fired(scenario, tmp_path, "dag_processor_frozen", "dag_processor_frozen")
    assert any('team="marketing"' in labels for labels in alerts.get("AirflowTeamTaskFailures", [])), alerts
    assert any('dag_id="finance_unserved"' in labels for labels in alerts.get("AirflowTaskQueuedTooLong", [])), alerts
    assert "AirflowDagImportErrors" in alerts, alerts
    assert not {"AirflowSchedulerDown", "AirflowSchedulerReplicasMissing", "AirflowTriggererReplicasMissing",
                "AirflowDagParseSlow"} & set(alerts), alerts


def test_the_executor_forgets_a_task_no_worker_takes(scenario):
    """While finance_unserved's task waits in the DB, the executors' queued_tasks reads 0 on every export: the task left
    that buffer once it was in Redis. Only the DB can say that Celery tasks wait (AirflowNoCeleryWorker reads it)."""
    waiting = [s for s in scenario.receiver.series(OLDEST_QUEUED, since=scenario.marks["healthy_end"], dag_id="finance_unserved")
               if s.value > 30 and s.at <= scenario.marks["dag_processor_frozen"]]
    assert waiting and {s.label("executor") for s in waiting} == {"CeleryExecutor"}, waiting[-3:]
    buffered = [s.value for s in scenario.receiver.series("airflow_executor_queued_tasks", since=waiting[0].at)
                if s.at <= waiting[-1].at]
    assert buffered and set(buffered) == {0.0}, buffered


@pytest.mark.parametrize("workers_gone, fires", [(False, False), (True, True)], ids=["workers-available", "no-worker"])
def test_a_queued_task_and_no_worker_fire_no_celery_worker(scenario, tmp_path, workers_gone, fires):
    """With kube-state-metrics reporting no worker from the end of the healthy phase, the task waiting in the DB fires
    AirflowNoCeleryWorker; with a worker available, it does not (a queue nobody serves is AirflowTaskQueuedTooLong's)."""
    kube = (available_workers(scenario, "dag_processor_frozen", "healthy_end" if workers_gone else None),)
    alerts = fired(scenario, tmp_path, "dag_processor_frozen", "dag_processor_frozen", kube_series=kube)
    assert ("AirflowNoCeleryWorker" in alerts) is fires, alerts


def test_a_frozen_dag_processor_fires_parse_slow(scenario, tmp_path):
    """Once the DAG processor parses nothing, every DAG goes stale in the DB and AirflowDagParseSlow fires."""
    alerts = fired(scenario, tmp_path, "unhealthy_end", "unhealthy_end")
    assert {"AirflowDagParseSlow", "AirflowDagProcessorDown"} <= set(alerts), alerts


def test_a_slow_database_fires_scheduler_loop_slow(scenario, tmp_path):
    """While every scheduler loop waits on a lock, AirflowSchedulerLoopSlow fires."""
    alerts = fired(scenario, tmp_path, "database_slow_end", "database_slow_end")
    assert "AirflowSchedulerLoopSlow" in alerts, alerts


@pytest.mark.parametrize("stem", ["Scheduler", "Triggerer"])
def test_one_stopped_replica_fires_replicas_missing(scenario, tmp_path, stem):
    """With one of two replicas stopped, the component's replicas alert fires and its all-down one does not."""
    alerts = fired(scenario, tmp_path, "control_plane_stopped", "control_plane_stopped")
    assert f"Airflow{stem}ReplicasMissing" in alerts and f"Airflow{stem}Down" not in alerts, alerts


def test_a_stopped_control_plane_fires_its_down_alerts(scenario, tmp_path):
    """Once no scheduler, triggerer or exporter reports, the collector forgets them and each one's alert fires."""
    alerts = fired(scenario, tmp_path, "control_plane_stopped", "control_plane_stopped", delay_scrapes=45)
    assert {"AirflowSchedulerDown", "AirflowTriggererDown", "AirflowTaskMetricsExporterDown"} <= set(alerts), alerts
