"""Tests what Airflow and the task metrics exporter really emit: every series an Airflow alert reads is produced, replicas
are told apart, and `promtool test rules` with the platform's rules, fed the recorded series, fires the alerts of each
unhealthy phase and none of a healthy run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.alerting import rule_groups
from tests.conftest import stack_config, typed_config
from tests.e2e.conftest import LOOP_SECONDS, PARSE_AGE_SECONDS
from tests.e2e.replay import SCRAPE_SECONDS, input_series, scrape_index
from tests.test_alert_tools import run, write_yaml

METRIC = re.compile(r"\b(airflow_[a-z0-9_]+)")
# The suite runs one triggerer and one DAG processor, and short phases: the same rules, with these keys changed.
SUITE_CONFIG = {"airflow-platform:alerting": {"queuedTaskSlaMinutes": 1, "teamTaskFailuresPerHour": 2,
                                              "dagParseSeconds": PARSE_AGE_SECONDS, "schedulerLoopSeconds": LOOP_SECONDS},
                "airflow-platform:airflow": {"replicas": {"triggerer": 1, "dagProcessor": 1}}}


def suite_rules() -> list[dict]:
    config = stack_config("prod")
    for key, changes in SUITE_CONFIG.items():
        config[key] = {**config.get(key, {}), **changes}
    groups = rule_groups(typed_config(config))
    # Rules on kube-state-metrics have no Kubernetes here; the promtool unit tests cover them (tests/alerts/).
    return [{"name": g["name"], "rules": [r for r in g["rules"] if "kube_" not in r["expr"]]} for g in groups]


def read_metrics(groups: list[dict]) -> set[str]:
    return {name for g in groups for r in g["rules"] for name in METRIC.findall(r["expr"])}


def fired(scenario, tmp_path: Path, end_mark: str, eval_mark: str, delay_scrapes: int = 0) -> dict[str, list[str]]:
    """Alert name -> the label sets promtool saw firing at `eval_mark` (+ delay), replaying the run up to `end_mark`."""
    groups = suite_rules()
    start = scenario.marks["ready"]
    series = input_series(scenario.receiver.samples, start, scenario.marks[end_mark], read_metrics(groups))
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


def test_every_process_exports_under_its_own_instance(scenario):
    """The two schedulers heartbeat as two instances, each <host>:<pid> of a running scheduler process."""
    instances = {s.label("instance") for s in scenario.receiver.series("airflow_scheduler_heartbeat_total", since=scenario.marks["ready"])}
    assert len(instances) == 2 and all(re.fullmatch(r".+:\d+", i) for i in instances), instances


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
    assert not {"AirflowSchedulerDown", "AirflowSchedulerReplicasMissing", "AirflowDagParseSlow"} & set(alerts), alerts


def test_a_frozen_dag_processor_fires_parse_slow(scenario, tmp_path):
    """Once the DAG processor parses nothing, every DAG goes stale in the DB and AirflowDagParseSlow fires."""
    alerts = fired(scenario, tmp_path, "unhealthy_end", "unhealthy_end")
    assert {"AirflowDagParseSlow", "AirflowDagProcessorDown"} <= set(alerts), alerts


def test_a_slow_database_fires_scheduler_loop_slow(scenario, tmp_path):
    """While every scheduler loop waits on a lock, AirflowSchedulerLoopSlow fires."""
    alerts = fired(scenario, tmp_path, "database_slow_end", "database_slow_end")
    assert "AirflowSchedulerLoopSlow" in alerts, alerts


def test_one_stopped_scheduler_fires_replicas_missing(scenario, tmp_path):
    """With one of two schedulers stopped, the replicas alert fires and the all-down one does not."""
    alerts = fired(scenario, tmp_path, "control_plane_stopped", "control_plane_stopped")
    assert "AirflowSchedulerReplicasMissing" in alerts and "AirflowSchedulerDown" not in alerts, alerts


def test_a_stopped_control_plane_fires_its_down_alerts(scenario, tmp_path):
    """Once no scheduler, triggerer or exporter reports, the collector forgets them and each one's alert fires."""
    alerts = fired(scenario, tmp_path, "control_plane_stopped", "control_plane_stopped", delay_scrapes=45)
    assert {"AirflowSchedulerDown", "AirflowTriggererDown", "AirflowTaskMetricsExporterDown"} <= set(alerts), alerts
