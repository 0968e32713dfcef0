"""Tests availability as the charts render it: replicas per component, zone spread, the system node pool, and a
PodDisruptionBudget for every replicated component that selects exactly that component's pods."""

from __future__ import annotations

import pytest

from tests.rendered import pod, selects

CONTROL_PLANE = ["airflow-scheduler", "airflow-api-server", "airflow-triggerer", "airflow-dag-processor"]


@pytest.mark.parametrize("variant, replicas", [("dev", 1), ("prod", 2)])
def test_control_plane_replicas(rendering, variant, replicas):
    """Production runs two schedulers, API servers and triggerers (and PgBouncers), dev one; the DAG processor runs alone
    everywhere (two race to insert each new DAG)."""
    airflow = rendering(variant).releases["airflow"]
    expected = {**dict.fromkeys(CONTROL_PLANE, replicas), "airflow-dag-processor": 1}
    assert {name: airflow.named("Deployment", name)["spec"]["replicas"] for name in CONTROL_PLANE} == expected


@pytest.mark.parametrize("variant, rule", [("dev", "ScheduleAnyway"), ("prod", "DoNotSchedule")])
@pytest.mark.parametrize("name, component", [("airflow-scheduler", "scheduler"), ("airflow-api-server", "api-server")])
def test_scheduler_and_api_server_spread_over_zones(rendering, variant, rule, name, component):
    """Schedulers and API servers spread one per zone, refusing to stack in one zone in production."""
    deployment = rendering(variant).releases["airflow"].named("Deployment", name)
    [constraint] = pod(deployment)["spec"]["topologySpreadConstraints"]
    assert constraint == {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": rule,
                          "labelSelector": {"matchLabels": {"tier": "airflow", "release": "airflow", "component": component}}}
    assert selects(constraint["labelSelector"], pod(deployment)["metadata"]["labels"])


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_everything_but_the_workers_on_the_system_nodes(rendering, variant):
    """Every pod the releases run (Airflow's control plane and Jobs, KEDA, the Prometheus operator and its webhook Jobs,
    Prometheus, Alertmanager, the collector) selects the system node group; only the workers select theirs, and only the
    node agents (DaemonSets) run everywhere."""
    result = rendering(variant)
    pools = {}
    for release in result.releases.values():
        for workload in release.objects:
            if workload["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
                pools[workload["metadata"]["name"]] = (pod(workload)["spec"].get("nodeSelector") or {}).get("airflow-platform/pool")
            elif workload["kind"] in ("Prometheus", "Alertmanager"):
                pools[workload["metadata"]["name"]] = (workload["spec"].get("nodeSelector") or {}).get("airflow-platform/pool")
    assert pools.pop("airflow-worker") == "workers"
    assert {name for name, pool in pools.items() if pool != "system"} == set()
    assert {"keda-operator", "kube-prometheus-stack-operator", "kube-prometheus-stack-admission-create", "otel-collector",
            "kube-prometheus-stack-prometheus", "kube-prometheus-stack-alertmanager", "airflow-database-cleanup"} <= set(pools)


PDBS = {
    "dev": ["airflow-api-server-pdb", "airflow-dag-processor-pdb", "airflow-scheduler-pdb", "airflow-triggerer-pdb", "airflow-worker-pdb"],
    "prod": ["airflow-api-server-pdb", "airflow-dag-processor-pdb", "airflow-pgbouncer-pdb", "airflow-scheduler-pdb",
             "airflow-triggerer-pdb", "airflow-worker-pdb"],
}


@pytest.mark.parametrize("variant", PDBS)
def test_every_component_has_a_budget_for_its_own_pods(rendering, variant):
    """Each budget allows one voluntary eviction at a time and selects the pods of exactly one Deployment, its own."""
    result = rendering(variant)
    airflow = result.releases["airflow"]
    budgets = airflow.of_kind("PodDisruptionBudget")
    assert sorted(b["metadata"]["name"] for b in budgets) == PDBS[variant]
    deployments = airflow.of_kind("Deployment")
    for budget in budgets:
        assert budget["spec"]["maxUnavailable"] == 1
        covered = [d["metadata"]["name"] for d in deployments if selects(budget["spec"]["selector"], pod(d)["metadata"]["labels"])]
        assert covered == [budget["metadata"]["name"].removesuffix("-pdb")]


def test_collector_budget(rendering):
    """The OpenTelemetry Collector, which every Airflow metric passes through, keeps one replica through a drain."""
    collector = rendering("prod").releases["otel-collector"]
    [budget] = collector.of_kind("PodDisruptionBudget")
    [deployment] = collector.of_kind("Deployment")
    assert (budget["spec"]["maxUnavailable"], deployment["spec"]["replicas"]) == (1, 2)
    assert selects(budget["spec"]["selector"], pod(deployment)["metadata"]["labels"])
