"""Tests DAG delivery as the chart renders it: objinsync as an init container and as a native sidecar in every DAG-reading pod,
the folders they fill mounted read-only into Airflow, the accounts that let them read the bucket, and the EFS option."""

from __future__ import annotations

import pytest
import yaml

from tests.rendered import DAG_READING, airflow_cfg, container, env, names, pod

EXCLUDES = ["--exclude", "**/__pycache__/**", "--exclude", "**/.dagtool-manifest.json"]


def bucket(result) -> str:
    return result.plan.outputs["dagBucket"]


@pytest.mark.parametrize("variant", ["dev", "prod"])
@pytest.mark.parametrize("component", DAG_READING)
def test_every_dag_reader_syncs_before_starting_and_after(rendering, variant, component):
    """After the migration wait, the pod pulls teams/ and shared/ once; then two native sidecars keep them in sync every 30 s."""
    result = rendering(variant)
    deployment = result.releases["airflow"].named("Deployment", DAG_READING[component])
    assert names(deployment, init=True) == ["wait-for-airflow-migrations", "dags-sync-init", "shared-sync-init", "dags-sync", "shared-sync"]
    assert [c for c in names(deployment) if c.endswith("-sync")] == []
    assert [container(deployment, c, init=True).get("restartPolicy") for c in ("dags-sync-init", "dags-sync", "shared-sync")] == [
        None, "Always", "Always"]
    teams, shared = f"s3://{bucket(result)}/teams", f"s3://{bucket(result)}/shared"
    assert container(deployment, "dags-sync-init", init=True)["args"] == ["pull", "--once", *EXCLUDES, teams, "/opt/airflow/dags"]
    assert container(deployment, "shared-sync-init", init=True)["args"] == ["pull", "--once", *EXCLUDES, shared, "/opt/airflow/plugins"]
    assert container(deployment, "dags-sync", init=True)["args"] == ["pull", "--interval", "30s", "--status-addr", ":8087", *EXCLUDES, teams,
                                                          "/opt/airflow/dags"]
    assert container(deployment, "shared-sync", init=True)["args"] == ["pull", "--interval", "30s", "--status-addr", ":8088", *EXCLUDES, shared,
                                                            "/opt/airflow/plugins"]


@pytest.mark.parametrize("component", DAG_READING)
def test_airflow_reads_what_objinsync_writes(rendering, component):
    """The Airflow container mounts the same emptyDir volumes read-only at the DAG and plugins folders."""
    deployment = rendering("prod").releases["airflow"].named("Deployment", DAG_READING[component])
    airflow = pod(deployment)["spec"]["containers"][0]
    mounts = {m["mountPath"]: (m["name"], m.get("readOnly")) for m in airflow["volumeMounts"]}
    assert (mounts["/opt/airflow/dags"], mounts["/opt/airflow/plugins"]) == (("dags", True), ("shared", True))
    volumes = {v["name"]: v for v in pod(deployment)["spec"]["volumes"]}
    assert (volumes["dags"], volumes["shared"]) == ({"name": "dags", "emptyDir": {}}, {"name": "shared", "emptyDir": {}})
    assert container(deployment, "dags-sync", init=True)["volumeMounts"] == [{"name": "dags", "mountPath": "/opt/airflow/dags"}]


@pytest.mark.parametrize("component", DAG_READING)
def test_sync_reads_the_bucket_with_the_read_only_role(rendering, component):
    """objinsync assumes the DAG reader role with the pod's IRSA token, whatever the pod's own role; the region is given."""
    result = rendering("prod")
    deployment = result.releases["airflow"].named("Deployment", DAG_READING[component])
    for sync in ("dags-sync", "shared-sync"):
        sidecar = container(deployment, sync, init=True)
        assert (env(sidecar, "AWS_ROLE_ARN"), env(sidecar, "AWS_REGION")) == (result.plan.outputs["dagReaderRoleArn"], "eu-west-1")
    account = result.releases["airflow"].named("ServiceAccount", pod(deployment)["spec"]["serviceAccountName"])
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    expected = result.plan.outputs["airflowRoleArns"].get(component, result.plan.outputs["dagReaderRoleArn"])
    assert role == expected


def test_api_server_reads_no_dags(rendering):
    """In Airflow 3 the API server serves DAGs from the database: it runs no sync and mounts no DAG folder."""
    api = rendering("prod").releases["airflow"].named("Deployment", "airflow-api-server")
    assert (names(api, init=True), names(api)) == (["wait-for-airflow-migrations"], ["api-server"])
    assert "/opt/airflow/dags" not in [m["mountPath"] for m in container(api, "api-server")["volumeMounts"]]


@pytest.mark.parametrize("component", ["dagProcessor", "triggerer", "workers"])
def test_efs_option_mounts_the_shared_claim(rendering, component):
    """With dagDelivery efs the components that load DAG files mount the claim the one writer fills; only the shared modules
    still sync per pod."""
    result = rendering("prod-efs")
    deployment = result.releases["airflow"].named("Deployment", DAG_READING[component])
    assert names(deployment, init=True) == ["wait-for-airflow-migrations", "shared-sync-init", "shared-sync"]
    [claim] = result.declared("PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod(deployment)["spec"]["volumes"]}
    assert volumes["dags"] == {"name": "dags", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    mounts = {m["mountPath"]: m["name"] for m in pod(deployment)["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/opt/airflow/dags"] == "dags"


@pytest.mark.parametrize("variant", ["prod", "prod-efs"])
def test_scheduler_loads_no_dags(rendering, variant):
    """Airflow 3's scheduler reads serialized DAGs from the database (DBDagBag), so, as the chart does beside a standalone DAG
    processor, it gets no DAG folder, no sync, and no AWS role at all."""
    result = rendering(variant)
    scheduler = result.releases["airflow"].named("Deployment", "airflow-scheduler")
    assert (names(scheduler, init=True), names(scheduler)) == (["wait-for-airflow-migrations"], ["scheduler", "scheduler-log-groomer"])
    assert "/opt/airflow/dags" not in [m["mountPath"] for m in container(scheduler, "scheduler")["volumeMounts"]]
    assert result.releases["airflow"].named("ServiceAccount", "airflow-scheduler")["metadata"].get("annotations") is None
    assert airflow_cfg(result)["scheduler"]["standalone_dag_processor"] == "True"


def test_a_task_pod_ends_with_its_task(rendering):
    """The KubernetesExecutor's pod template (the workers' pod) runs the task as its only container: the syncs are native
    sidecars, which stop when it ends, so the pod completes (ordinary sidecar containers would keep it running)."""
    release = rendering("prod-celery-and-kubernetes").releases["airflow"]
    template = yaml.safe_load(release.named("ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    assert [c["name"] for c in template["spec"]["containers"]] == ["base"]
    sidecars = [c["name"] for c in template["spec"]["initContainers"] if c.get("restartPolicy") == "Always"]
    assert sidecars == ["dags-sync", "shared-sync"]
