"""Tests the task pods' placement in real Airflow: the KubernetesPodOperator of the cncf.kubernetes provider builds its
pod, and Airflow applies the pod_mutation_hook of the rendered airflow_local_settings.py, as it does before every launch."""

from __future__ import annotations

import json
import os
import subprocess

from components.names import DO_NOT_DISRUPT, POOL_LABEL
from tests.e2e.local_airflow import AIRFLOW_VENV

# Builds one pod per namespace given, as a task's operator does, and prints each as the API server would receive it.
PROBE = """
import json, sys
from kubernetes.client import ApiClient
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

for namespace in sys.argv[1:]:
    operator = KubernetesPodOperator(task_id="load", name="load", image="busybox:1.37", namespace=namespace,
                                     node_selector={"team": "analytics"}, annotations={"owner": "analytics"})
    print(json.dumps(ApiClient().sanitize_for_serialization(operator.build_pod_request_obj())))
"""
# Loading a kubeconfig contacts no server: enough for the operator to build its pod.
KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
              "clusters": [{"name": "stand-in", "cluster": {"server": "https://127.0.0.1:6443"}}],
              "users": [{"name": "stand-in", "user": {}}],
              "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}]}


def built_pods(rendering, tmp_path, *namespaces: str) -> list[dict]:
    home = tmp_path / "airflow"
    (home / "config").mkdir(parents=True)
    settings = rendering("prod").releases["airflow"].named("ConfigMap", "airflow-config")["data"]["airflow_local_settings.py"]
    (home / "config" / "airflow_local_settings.py").write_text(settings)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(KUBECONFIG))
    connection = {"conn_type": "kubernetes", "extra": {"in_cluster": False, "kube_config_path": str(kubeconfig)}}
    env = {"PATH": f"{AIRFLOW_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path), "AIRFLOW_HOME": str(home),
           "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(connection), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    python = AIRFLOW_VENV / "bin" / "python"
    assert python.exists(), f"{AIRFLOW_VENV} is missing: `make test` installs it from requirements-e2e.txt"
    result = subprocess.run([str(python), "-c", PROBE, *namespaces], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_task_pods_land_on_the_task_pool_undisrupted(rendering, tmp_path):
    """A pod of the task namespace selects the task pool, tolerates its taint, and carries do-not-disrupt, beside what
    the DAG asked for; a pod of another namespace is left as the DAG built it."""
    task_pod, other = built_pods(rendering, tmp_path, "airflow-tasks", "airflow")
    assert task_pod["metadata"]["namespace"] == "airflow-tasks"
    assert task_pod["spec"]["nodeSelector"] == {"team": "analytics", POOL_LABEL: "tasks"}
    assert task_pod["spec"]["tolerations"] == [{"key": POOL_LABEL, "operator": "Equal", "value": "tasks", "effect": "NoSchedule"}]
    assert task_pod["metadata"]["annotations"] == {"owner": "analytics", DO_NOT_DISRUPT: "true"}
    assert other["spec"]["nodeSelector"] == {"team": "analytics"}
    assert other["spec"].get("tolerations", []) == [] and other["metadata"]["annotations"] == {"owner": "analytics"}
