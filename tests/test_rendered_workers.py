"""Tests the Celery workers as the chart renders them: node rotation (grace period, eviction annotations, PDB), their size
and pool, the Celery config module where Airflow imports it, and the KEDA ScaledObject that scales them."""

from __future__ import annotations

import pytest
import yaml

from tests.rendered import container, env, pod

EXPECTED = {
    # variant: (grace seconds, longest task minutes, KEDA polling, cooldown, min, max, concurrency, requests, memory)
    "dev": (5400, "60", 5, 5460, 1, 4, 4, "1000m", "4Gi"),
    "prod": (10_800, "120", 5, 10_860, 3, 20, 8, "4000m", "16Gi"),
}


def worker(result) -> dict:
    return result.releases["airflow"].named("Deployment", "airflow-worker")


@pytest.mark.parametrize("variant", EXPECTED)
def test_rotation_lets_running_tasks_finish(rendering, variant):
    """A stopping worker gets 1.5 x the longest task, and neither Karpenter nor the cluster autoscaler evicts it."""
    grace, longest, *_ = EXPECTED[variant]
    template = pod(worker(rendering(variant)))
    assert template["spec"]["terminationGracePeriodSeconds"] == grace
    annotations = template["metadata"]["annotations"]
    assert {k: v for k, v in annotations.items() if not k.startswith("checksum/")} == {
        "karpenter.sh/do-not-disrupt": "true", "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
        "airflow-platform/longest-task-minutes": longest}


@pytest.mark.parametrize("variant", EXPECTED)
def test_worker_size_and_pool(rendering, variant):
    """Workers request their CPU and memory, are limited to that memory, and run on the worker pool's nodes (tolerating
    exactly its taint), spread over zones."""
    *_, cpu, memory = EXPECTED[variant]
    deployment = worker(rendering(variant))
    assert container(deployment, "worker")["resources"] == {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}
    spec = pod(deployment)["spec"]
    assert spec["nodeSelector"] == {"airflow-platform/pool": "workers"}
    assert spec["tolerations"] == [{"key": "airflow-platform/pool", "operator": "Equal", "value": "workers", "effect": "NoSchedule"}]
    assert spec["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"tier": "airflow", "release": "airflow", "component": "worker"}}}]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_celery_module_is_where_airflow_imports_it(rendering, variant):
    """The worker mounts the generated module into $AIRFLOW_HOME/config (on Airflow's sys.path), from the program's ConfigMap."""
    result = rendering(variant)
    deployment = worker(result)
    mounts = {m["mountPath"]: m for m in container(deployment, "worker")["volumeMounts"]}
    mount = mounts["/opt/airflow/config/airflow_platform_celery.py"]
    assert (mount["subPath"], mount.get("readOnly")) == ("airflow_platform_celery.py", True)
    [volume] = [v for v in pod(deployment)["spec"]["volumes"] if v["name"] == mount["name"]]
    config_maps = [o["metadata"]["name"] for o in result.declared("ConfigMap")]
    assert volume["configMap"]["name"] == "platform-airflow-celery-config" and "platform-airflow-celery-config" in config_maps


@pytest.mark.parametrize("variant", EXPECTED)
def test_scaled_object_bounds(rendering, variant):
    """KEDA scales the worker Deployment between the stack's bounds, polling and cooling down as configured, counting running and
    queued task instances per worker_concurrency slots."""
    _, _, polling, cooldown, low, high, concurrency, *_ = EXPECTED[variant]
    scaled = rendering(variant).releases["airflow"].named("ScaledObject", "airflow-worker")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"kind": "Deployment", "name": "airflow-worker", "envSourceContainerName": "worker"}
    assert (spec["pollingInterval"], spec["cooldownPeriod"], spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        polling, cooldown, low, high)
    [trigger] = spec["triggers"]
    assert trigger == {"type": "postgresql", "metadata": {
        "targetQueryValue": "1", "connectionFromEnv": trigger["metadata"]["connectionFromEnv"],  # which one: the test below
        "query": f"SELECT ceil(COUNT(*)::decimal / {concurrency}) FROM task_instance WHERE (state='running' OR state='queued') "
                 "AND queue IN ('default')"}}


@pytest.mark.parametrize("variant", ["dev", "prod", "prod-without-pgbouncer", "dev-with-pgbouncer"])
def test_keda_query_reaches_the_database_itself(rendering, variant):
    """The connection KEDA reads (the worker's variable its trigger names) goes to the DB itself, never through PgBouncer, whose
    transaction pooling would hold a slot; Airflow's own connection goes through PgBouncer when it is on."""
    result = rendering(variant)
    [trigger] = result.releases["airflow"].named("ScaledObject", "airflow-worker")["spec"]["triggers"]
    worker_container = container(worker(result), "worker")
    [metadata] = [s for s in result.declared("Secret") if s["metadata"]["name"] == "platform-airflow-metadata"]

    def target(variable: str) -> str:
        reference = env(worker_container, variable)["secretKeyRef"]
        assert reference["name"] == "platform-airflow-metadata"
        return metadata["stringData"][reference["key"]].split("@", 1)[1].split("?")[0]

    database = f"{result.plan.outputs['databaseAddress']}:5432/airflow"
    assert target(trigger["metadata"]["connectionFromEnv"]) == database
    pooled = result.cfg.airflow.pgbouncer.enabled
    assert target("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") == ("airflow-pgbouncer.airflow:6543/airflow-metadata" if pooled else database)


def test_keda_installs_the_scaled_object_crd(rendering):
    """The KEDA release brings the ScaledObject CRD that the Airflow release's ScaledObject needs."""
    keda = rendering("prod").releases["keda"]
    assert "scaledobjects.keda.sh" in [o["metadata"]["name"] for o in keda.of_kind("CustomResourceDefinition")]


def test_worker_pdb(rendering):
    """At most one worker is evicted voluntarily at a time, and the budget covers exactly the worker pods."""
    airflow = rendering("prod").releases["airflow"]
    budget = airflow.named("PodDisruptionBudget", "airflow-worker-pdb")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"tier": "airflow", "component": "worker", "release": "airflow"}}}


def test_kubernetes_executor_pods_run_on_the_worker_pool(rendering):
    """With the KubernetesExecutor beside Celery, a task's pod (the chart's pod template) lands on the worker pool too."""
    config_map = rendering("prod-celery-and-kubernetes").releases["airflow"].named("ConfigMap", "airflow-config")
    template = yaml.safe_load(config_map["data"]["pod_template_file.yaml"])
    assert template["spec"]["nodeSelector"] == {"airflow-platform/pool": "workers"}
    assert template["spec"]["tolerations"] == [{"key": "airflow-platform/pool", "operator": "Equal", "value": "workers", "effect": "NoSchedule"}]
