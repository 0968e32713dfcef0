"""Tests the Airflow and Keda components: the two releases, the Secrets behind the chart, the Celery module."""

from __future__ import annotations

import base64
import os
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from components.airflow import fernet_key, pgbouncer_ini
from components.airflow_values import SECRETS
from tools.offline import Plan

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"


def release(plan: Plan, chart: str):
    [found] = [r for r in plan.of_type(RELEASE) if r.inputs["chart"] == chart]
    return found


def secret_data(plan: Plan, name: str) -> dict[str, str]:
    [found] = [r for r in plan.of_type(SECRET) if r.inputs["metadata"]["name"] == name]
    return found.inputs["stringData"]


class TestReleases:
    """Tests the KEDA and Airflow chart releases."""

    def test_keda_release(self, prod_plan):
        """KEDA 2.20.2 from kedacore in its own namespace, CRDs installed."""
        keda = release(prod_plan, "keda")
        assert (keda.inputs["version"], keda.inputs["repositoryOpts"], keda.inputs["namespace"]) == (
            "2.20.2", {"repo": "https://kedacore.github.io/charts"}, "keda")
        assert keda.inputs["values"]["crds"] == {"install": True}

    def test_airflow_release(self, prod_plan):
        """The official chart 1.19.0 into namespace airflow, waiting for its jobs (the migration)."""
        airflow = release(prod_plan, "airflow")
        assert (airflow.inputs["name"], airflow.inputs["version"], airflow.inputs["namespace"]) == ("airflow", "1.19.0", "airflow")
        assert airflow.inputs["repositoryOpts"] == {"repo": "https://airflow.apache.org"}
        assert (airflow.inputs["waitForJobs"], airflow.inputs["timeout"]) == (True, 1800)

    def test_airflow_waits_for_keda_secrets_and_module(self, prod_plan):
        """The Airflow release depends on KEDA's release, every Secret it names, and the Celery module."""
        airflow = release(prod_plan, "airflow")
        assert release(prod_plan, "keda").urn in airflow.dependencies
        secrets = {r.urn for r in prod_plan.of_type(SECRET) if r.inputs["metadata"]["namespace"] == "airflow"}
        [module] = [r.urn for r in prod_plan.of_type("kubernetes:core/v1:ConfigMap") if r.inputs["metadata"]["name"] == "platform-airflow-celery-config"]
        assert secrets | {module} <= set(airflow.dependencies)

    def test_values_wired_to_real_resources(self, prod_plan):
        """The values name the real bucket and roles the program created."""
        values = release(prod_plan, "airflow").inputs["values"]
        bucket = prod_plan.outputs["dagBucket"]
        assert values["config"]["logging"]["remote_base_log_folder"] == f"s3://{bucket}/logs"
        assert values["workers"]["extraInitContainers"][0]["args"][-2] == f"s3://{bucket}/teams"
        assert values["workers"]["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == prod_plan.outputs["airflowRoleArns"]["workers"]
        # The scheduler loads no DAG file and calls no AWS API: its account has no role at all (nor, Celery only, a token).
        assert values["scheduler"]["serviceAccount"] == {"automountServiceAccountToken": False}

    def test_releases_use_the_cluster_provider(self, prod_plan):
        """Both releases and every Kubernetes object go to the cluster through its provider."""
        [provider] = prod_plan.of_type("pulumi:providers:kubernetes")
        kubernetes = [r for r in prod_plan.resources if r.type.startswith("kubernetes:")]
        assert {r.provider.rsplit("::", 1)[0] for r in kubernetes} == {provider.urn}


class TestSecrets:
    """Tests the Kubernetes Secrets behind the chart's *SecretName values."""

    def test_every_named_secret_exists_and_is_secret(self, prod_plan, dev_plan):
        """Each Secret the values name is created in namespace airflow, its data marked secret."""
        for plan, names in ((prod_plan, [SECRETS.metadata, SECRETS.broker, SECRETS.fernet_key, SECRETS.api_secret_key, SECRETS.jwt_secret,
                                         SECRETS.admin_password, SECRETS.pgbouncer_config, SECRETS.pgbouncer_stats, SECRETS.sso_client_secret]),
                            (dev_plan, [SECRETS.metadata, SECRETS.broker, SECRETS.fernet_key, SECRETS.api_secret_key, SECRETS.jwt_secret,
                                        SECRETS.admin_password, SECRETS.redis_password, SECRETS.sso_client_secret])):
            created = {r.inputs["metadata"]["name"]: r for r in plan.of_type(SECRET) if r.inputs["metadata"]["namespace"] == "airflow"}
            assert sorted(created) == sorted(names)
            for secret in created.values():
                assert secret.inputs["metadata"]["namespace"] == "airflow"
                assert {p.split(".")[0] for p in secret.secret_inputs} == {"stringData"}

    def test_dev_metadata_connection_is_tls_to_rds(self, dev_plan):
        """Without PgBouncer, Airflow and KEDA connect straight to RDS with sslmode=require."""
        [db] = dev_plan.of_type("aws:rds/instance:Instance")
        data = secret_data(dev_plan, SECRETS.metadata)
        assert sorted(data) == ["connection"]
        url = urlsplit(data["connection"])
        assert (url.scheme, url.hostname, url.port, url.path, url.query) == ("postgresql", db.outputs["address"], 5432, "/airflow", "sslmode=require")
        assert (url.username, url.password) == ("airflow_admin", db.inputs["password"])

    def test_prod_connection_through_pgbouncer_and_keda_direct(self, prod_plan):
        """With PgBouncer, Airflow connects to it; kedaConnection goes straight to RDS over TLS."""
        [db] = prod_plan.of_type("aws:rds/instance:Instance")
        data = secret_data(prod_plan, SECRETS.metadata)
        airflow, keda = urlsplit(data["connection"]), urlsplit(data["kedaConnection"])
        assert (airflow.hostname, airflow.port, airflow.path) == ("airflow-pgbouncer.airflow", 6543, "/airflow-metadata")
        assert (keda.hostname, keda.port, keda.path, keda.query) == (db.outputs["address"], 5432, "/airflow", "sslmode=require")

    def test_pgbouncer_speaks_tls_to_rds(self, prod_plan):
        """pgbouncer.ini points at RDS with the configured pool and requires TLS to it; users.txt holds the password."""
        [db] = prod_plan.of_type("aws:rds/instance:Instance")
        data = secret_data(prod_plan, SECRETS.pgbouncer_config)
        ini = data["pgbouncer.ini"].splitlines()
        assert f"airflow-metadata = host={db.outputs['address']} dbname=airflow port=5432 pool_size=40" in ini
        assert {"server_tls_sslmode = require", "max_client_conn = 1000", "pool_mode = transaction", "listen_port = 6543"} <= set(ini)
        assert data["users.txt"] == f'"airflow_admin" "{db.inputs["password"]}"\n'
        assert data["pgbouncer.ini"] == pgbouncer_ini(db.outputs["address"], 40, 1000)

    def test_prod_broker_is_elasticache_over_tls(self, prod_plan):
        """The broker URL uses rediss://, the replication group's primary endpoint and its auth token, verifying the certificate."""
        [group] = prod_plan.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
        url = urlsplit(secret_data(prod_plan, SECRETS.broker)["connection"])
        assert (url.scheme, url.hostname, url.port, url.path, url.query) == (
            "rediss", group.outputs["primaryEndpointAddress"], 6379, "/0", "ssl_cert_reqs=required")
        assert url.password == group.inputs["authToken"]

    def test_dev_broker_is_the_chart_redis(self, dev_plan):
        """Dev's broker URL points at the chart's Redis with the generated password the chart also reads."""
        password = secret_data(dev_plan, SECRETS.redis_password)["password"]
        assert secret_data(dev_plan, SECRETS.broker)["connection"] == f"redis://:{password}@airflow-redis:6379/0"

    def test_fernet_key_is_a_valid_key(self, prod_plan):
        """The fernet key Secret holds a key Fernet accepts."""
        Fernet(secret_data(prod_plan, SECRETS.fernet_key)["fernet-key"])

    @pytest.mark.parametrize("run", range(5))
    def test_fernet_key_from_random_bytes(self, run):
        """Unpadded URL-safe base64 of 32 random bytes, as pulumi_random gives it, becomes a working Fernet key."""
        unpadded = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        Fernet(fernet_key(unpadded)).decrypt(Fernet(fernet_key(unpadded)).encrypt(b"x"))

    def test_generated_values_are_secret_in_state(self, prod_plan):
        """pulumi_random's RandomId does not mark its encodings secret; the program does."""
        [fernet] = prod_plan.of_type("random:index/randomId:RandomId")
        assert sorted(fernet.secret_outputs) == ["b64Std", "b64Url", "dec", "hex"]


class TestCeleryModule:
    """Tests the ConfigMap that ships the Celery config module."""

    @pytest.mark.parametrize("stack_fixture, tasks, memory", [("dev_plan", 100, 393_216), ("prod_plan", 200, 393_216)], ids=["dev", "prod"])
    def test_module_carries_the_stack_numbers(self, request, stack_fixture, tasks, memory):
        """The shipped module sets the stack's worker_max_tasks_per_child and worker_max_memory_per_child."""
        plan = request.getfixturevalue(stack_fixture)
        [config_map] = [c for c in plan.of_type("kubernetes:core/v1:ConfigMap") if c.inputs["metadata"]["name"] == "platform-airflow-celery-config"]
        assert config_map.inputs["metadata"]["namespace"] == "airflow"
        module = config_map.inputs["data"]["airflow_platform_celery.py"]
        assert f'"worker_max_tasks_per_child": {tasks},' in module and f'"worker_max_memory_per_child": {memory},' in module


def test_namespaces_enforce_restricted_pod_security(prod_plan):
    """The airflow namespace, like Karpenter's, enforces the restricted profile (tests/test_pod_security.py checks them all)."""
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"].get("labels", {}) for r in prod_plan.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces["airflow"] == {"pod-security.kubernetes.io/enforce": "restricted", "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}
    assert sorted(namespaces) == ["airflow", "airflow-tasks", "karpenter", "keda", "monitoring", "node-exporter"]
    assert namespaces["karpenter"] == {"pod-security.kubernetes.io/enforce": "restricted"}
