"""Tests the task metrics exporter's Deployment and the rules the exporter applies (its readings run in tests/e2e)."""

from __future__ import annotations

import pytest

from components.task_metrics_exporter import executor_of, team_of

TEAMS = frozenset({"analytics", "finance"})


@pytest.mark.parametrize("dag_id, team", [("analytics_orders", "analytics"), ("finance_close_books", "finance"),
                                          ("marketing_daily", None), ("analytics", None), ("analyticsx_orders", None)],
                         ids=["team", "several-underscores", "unknown-team", "no-underscore", "look-alike"])
def test_team_of(dag_id, team):
    """A DAG belongs to the team its id starts with, followed by an underscore."""
    assert team_of(dag_id, TEAMS) == team


@pytest.mark.parametrize("chosen, executor", [
    (None, "CeleryExecutor"), ("CeleryExecutor", "CeleryExecutor"),
    ("airflow.providers.celery.executors.celery_executor.CeleryExecutor", "CeleryExecutor"),
    ("KubernetesExecutor", "KubernetesExecutor"),
    ("airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor", "KubernetesExecutor"),
    ("my_executor", "my_executor"),
], ids=["unset-is-the-default", "class-name", "celery-import-path", "kubernetes", "kubernetes-import-path", "an-alias-as-is"])
def test_executor_of(chosen, executor):
    """A queued task's executor, however its DAG names it; unset means the first configured one, Celery."""
    assert executor_of(chosen) == executor


def deployment(plan) -> dict:
    [found] = [r for r in plan.of_type("kubernetes:apps/v1:Deployment") if r.inputs["metadata"]["name"] == "airflow-task-metrics"]
    return found.inputs


def test_one_exporter_per_stack(dev_plan, prod_plan):
    """Every stack runs exactly one exporter, in the Airflow namespace."""
    for plan in (dev_plan, prod_plan):
        spec = deployment(plan)
        assert (spec["metadata"]["namespace"], spec["spec"]["replicas"]) == ("airflow", 1)


def test_reads_the_db_through_airflow_secret_and_reports_every_team(prod_plan):
    """The DB URL comes from the metadata Secret; the teams and interval from the stack; OTLP goes to the collector."""
    [container] = deployment(prod_plan)["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == {"secretKeyRef": {"name": "platform-airflow-metadata", "key": "connection"}}
    assert env["AIRFLOW_PLATFORM_TEAMS"] == "analytics,marketing,finance"
    assert env["AIRFLOW_PLATFORM_INTERVAL_SECONDS"] == "30"
    assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == "http://otel-collector.monitoring.svc.cluster.local:4318/v1/metrics"


def test_runs_restricted_on_the_system_nodes(prod_plan):
    """Non-root, no token, read-only root, no capabilities, seccomp, and a memory limit."""
    pod = deployment(prod_plan)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["automountServiceAccountToken"] is False and pod["nodeSelector"] == {"airflow-platform/pool": "system"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["limits"] == {"memory": "256Mi"}
