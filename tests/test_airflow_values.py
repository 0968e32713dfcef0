"""Tests the Airflow chart values where they say what the renders cannot: the chart's schema refusing a broken value, the
formulas behind the lessons over many inputs, and secrets referenced by name only. The lessons as they land in the
rendered objects are asserted in tests/test_rendered_*.py."""

from __future__ import annotations

import copy
import math
import sys
import types

import pytest

from components import celery_config, process_identity, task_pod_placement
from components.airflow_values import SECRETS, Wiring, airflow_values
from tests.conftest import stack_config, typed_config

WIRING = Wiring(
    region="eu-west-1", dag_bucket="dags-bucket", dag_reader_role_arn="arn:aws:iam::123456789012:role/dag-reader",
    component_role_arns={"workers": "arn:aws:iam::123456789012:role/worker", "triggerer": "arn:aws:iam::123456789012:role/triggerer",
                         "dagProcessor": "arn:aws:iam::123456789012:role/dag-processor", "apiServer": "arn:aws:iam::123456789012:role/api-server"})


def values_for(stack: str, **airflow_changes) -> dict:
    config = stack_config(stack)
    config["airflow-platform:airflow"].update(airflow_changes)
    return airflow_values(typed_config(config), WIRING)


@pytest.fixture(scope="module", params=["dev", "prod"])
def values(request) -> dict:
    return values_for(request.param)


@pytest.fixture(scope="module")
def prod() -> dict:
    return values_for("prod")


@pytest.fixture(scope="module")
def schema_errors(values_errors):
    return lambda values: values_errors("airflow", values)


class TestSchema:
    """Tests that the chart's schema, which Helm applies before rendering, refuses a broken value (chart 1.19.0)."""

    @pytest.mark.parametrize("path, bad, error", [
        (("workers", "podAnnotations", "karpenter.sh/do-not-disrupt"), True, "- at '/workers/podAnnotations/karpenter.sh~1do-not-disrupt': got boolean, want string"),
        (("scheduler", "replicas"), "2", "- at '/scheduler/replicas': got string, want integer"),
        (("databaseCleanup", "retentionDays"), 0, "- at '/databaseCleanup/retentionDays': minimum: got 0, want 1"),
        (("workers", "keda", "unknownKey"), 1, "- at '/workers/keda': additional properties 'unknownKey' not allowed"),
        (("executor",), "CeleryExecutor, KubernetesExecutor",
         "- at '/executor': 'CeleryExecutor, KubernetesExecutor' does not match pattern "
         "'^(([a-zA-Z_][a-zA-Z0-9_]*.)*[A-Z][a-zA-Z0-9]+Executor)(,(([a-zA-Z_][a-zA-Z0-9_]*.)*[A-Z][a-zA-Z0-9]+Executor))*$'"),
    ], ids=["boolean-annotation", "string-replicas", "zero-retention", "unknown-keda-key", "executor-with-space"])
    def test_schema_bites(self, prod, schema_errors, path, bad, error):
        """The stack's values pass, and each broken one is refused naming the key."""
        assert schema_errors(prod) == []
        broken = copy.deepcopy(prod)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        assert schema_errors(broken) == [error]


class TestExecutor:
    """Tests the executor setting."""

    def test_celery_by_default(self, values):
        """CeleryExecutor alone unless the stack asks for more; no pod launching in the Airflow namespace."""
        assert (values["executor"], values["allowPodLaunching"]) == ("CeleryExecutor", False)

    def test_celery_and_kubernetes_option(self):
        """The option is Airflow 3's multiple-executor list, and lets the KubernetesExecutor launch pods."""
        values = values_for("dev", executor="CeleryExecutor,KubernetesExecutor")
        assert (values["executor"], values["allowPodLaunching"]) == ("CeleryExecutor,KubernetesExecutor", True)


class TestCeleryRecycling:
    """Tests worker_concurrency and the custom Celery config module."""

    @pytest.mark.parametrize("max_tasks, max_memory", [(100, 393_216), (1, 65_536), (5000, 4_194_304)], ids=["default", "smallest", "large"])
    def test_module_compiles_and_extends_the_defaults(self, monkeypatch, max_tasks, max_memory):
        """The generated module imports the provider's defaults, keeps them, and sets both recycling keys."""
        provider_defaults = {"broker_url": "redis://x", "worker_prefetch_multiplier": 1}
        stub = types.ModuleType("airflow.providers.celery.executors.default_celery")
        stub.DEFAULT_CELERY_CONFIG = provider_defaults
        monkeypatch.setitem(sys.modules, "airflow.providers.celery.executors.default_celery", stub)
        namespace: dict = {}
        exec(compile(celery_config.celery_config_module(max_tasks, max_memory), "airflow_platform_celery.py", "exec"), namespace)
        assert namespace["CELERY_CONFIG"] == {**provider_defaults, "worker_max_tasks_per_child": max_tasks,
                                              "worker_max_memory_per_child": max_memory}


class TestNodeRotation:
    """Tests that rotating nodes let running tasks finish."""

    @pytest.mark.parametrize("minutes, grace", [(60, 5400), (120, 10_800), (7, 630), (1, 90), (45, 4050)],
                             ids=["1h", "2h", "7min", "1min", "45min"])
    def test_grace_is_one_and_a_half_longest_tasks(self, minutes, grace):
        """terminationGracePeriodSeconds = ceil(1.5 × longest task), and KEDA cools down 60 s later."""
        values = values_for("dev", longestTaskMinutes=minutes)
        assert values["workers"]["terminationGracePeriodSeconds"] == grace == math.ceil(1.5 * minutes * 60)
        assert values["workers"]["keda"]["cooldownPeriod"] == grace + 60
        # The longest task travels with the values, where the policy pack checks the grace period against it.
        assert values["workers"]["podAnnotations"]["airflow-platform/longest-task-minutes"] == str(minutes)


class TestDagDelivery:
    """Tests the objinsync sidecars' probes and interval."""

    def test_sidecar_probes_use_their_status_ports(self, prod):
        """Each native sidecar exposes its own status port and is probed on /health once a first timed sync had its time; no
        startup probe, which would hold Airflow's container until then."""
        dags, shared = [c for c in prod["workers"]["extraInitContainers"] if c.get("restartPolicy") == "Always"]
        assert (dags["ports"], shared["ports"]) == ([{"name": "dags-sync", "containerPort": 8087}], [{"name": "shared-sync", "containerPort": 8088}])
        assert dags["livenessProbe"] == {"httpGet": {"path": "/health", "port": 8087}, "periodSeconds": 30, "failureThreshold": 3,
                                         "initialDelaySeconds": 150}
        assert ("startupProbe" in dags, shared["livenessProbe"]["httpGet"]) == (False, {"path": "/health", "port": 8088})
        assert "extraContainers" not in prod["workers"]

    def test_interval_from_config(self):
        """The sidecars' interval follows airflow.dagSync.intervalSeconds."""
        config = stack_config("dev")
        config["airflow-platform:airflow"]["dagSync"]["intervalSeconds"] = 15
        sidecars = [c for c in airflow_values(typed_config(config), WIRING)["triggerer"]["extraInitContainers"] if c.get("restartPolicy")]
        assert [sidecar["args"][1:3] for sidecar in sidecars] == [["--interval", "15s"]] * 2
        assert [sidecar["livenessProbe"]["initialDelaySeconds"] for sidecar in sidecars] == [135] * 2


# What every chart Job gets (tests/test_pod_security.py checks the pods): its size, and no API token.
JOB = {"resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1024Mi"}},
       "serviceAccount": {"automountServiceAccountToken": False}}


CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}


class TestDatabaseCleanup:
    """Tests the chart's databaseCleanup CronJob values."""


    @pytest.mark.parametrize("stack, schedule, days", [("dev", "0 3 * * *", 14), ("prod", "0 2 * * 0", 90)], ids=["dev", "prod"])
    def test_cleanup_skips_the_archive_by_default(self, stack, schedule, days):
        """The CronJob runs on the stack's schedule and retention, deleting purged rows instead of archiving them, sized and
        without an API token."""
        assert values_for(stack)["databaseCleanup"] == {"enabled": True, "schedule": schedule, "retentionDays": days, "skipArchive": True,
                                                        **JOB}

    def test_archive_kept_when_asked(self):
        """skipArchive false hands the chart false, so airflow db clean copies purged rows into its archive tables."""
        values = values_for("dev", databaseCleanup={"schedule": "0 3 * * *", "retentionDays": 14, "skipArchive": False})
        assert values["databaseCleanup"] == {"enabled": True, "schedule": "0 3 * * *", "retentionDays": 14, "skipArchive": False, **JOB}


class TestSecretsAndDatabase:
    """Tests that secrets are referenced by name only, and the chart's own Postgres is off."""

    def test_secret_names(self, values):
        """Every secret the chart needs comes from a Secret the program created."""
        assert values["data"] == {"metadataSecretName": SECRETS.metadata, "brokerUrlSecretName": SECRETS.broker}
        assert (values["fernetKeySecretName"], values["apiSecretKeySecretName"], values["jwtSecretName"]) == (
            SECRETS.fernet_key, SECRETS.api_secret_key, SECRETS.jwt_secret)
        assert values["postgresql"] == {"enabled": False}

    def test_no_secret_literal_keys(self, values):
        """No value under a key the chart reads as a secret literal (password, fernetKey, brokerUrl, ...)."""
        literal_keys = {"password", "pass", "fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey", "brokerUrl", "metadataConnection",
                        "resultBackendConnection"}

        def keys(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    yield key
                    yield from keys(value)
            elif isinstance(node, list):
                for item in node:
                    yield from keys(item)

        assert literal_keys & set(keys(values)) == set()

    def test_in_cluster_redis_in_dev_elasticache_in_prod(self, prod):
        """Dev's chart Redis gets its password from a Secret, restricted as the redis user; prod turns it off for ElastiCache."""
        assert values_for("dev")["redis"] == {
            "enabled": True, "passwordSecretName": SECRETS.redis_password,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "securityContexts": {"pod": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999, "runAsNonRoot": True,
                                         "seccompProfile": {"type": "RuntimeDefault"}}, "container": CONTAINER},
            "serviceAccount": {"automountServiceAccountToken": False}}
        assert prod["redis"] == {"enabled": False}

    def test_pgbouncer_config_from_secrets(self, prod):
        """PgBouncer reads its ini and users from Secrets, so the DB password stays out of the values; it runs restricted as
        nobody, sized, without an API token."""
        assert prod["pgbouncer"] == {
            "enabled": True, "replicas": 2, "configSecretName": SECRETS.pgbouncer_config,
            "metricsExporterSidecar": {"statsSecretName": SECRETS.pgbouncer_stats, "securityContexts": {"container": CONTAINER},
                                       "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}},
            "maxClientConn": 1000, "metadataPoolSize": 40,
            "podDisruptionBudget": {"enabled": True, "config": {"maxUnavailable": 1}},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "securityContexts": {"pod": {"runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534, "runAsNonRoot": True,
                                         "seccompProfile": {"type": "RuntimeDefault"}}, "container": CONTAINER},
            "serviceAccount": {"automountServiceAccountToken": False}}

class TestConfiguration:
    """Tests Airflow configuration the platform sets."""

    def test_airflow_version_follows_the_image(self):
        """airflowVersion is the image tag's version, so the chart's version switches match the image, which the
        KubernetesExecutor's pod template runs too."""
        config = stack_config("dev")
        config["airflow-platform:images"] = {"airflow": {"repository": "registry.example/airflow", "tag": "3.1.8-python3.12"}}
        values = airflow_values(typed_config(config), WIRING)
        image = {"repository": "registry.example/airflow", "tag": "3.1.8-python3.12"}
        assert (values["airflowVersion"], values["images"]["airflow"], values["images"]["pod_template"]) == ("3.1.8", image, image)

    @pytest.mark.parametrize("stack, timeout", [("dev", 25 * 60), ("prod", 40 * 60)], ids=["dev", "prod"])
    def test_tasks_are_requeued_only_after_the_queue_sla(self, stack, timeout):
        """task_queued_timeout is the stack's queued-task SLA plus 10 minutes, so the wait alert can fire before a requeue."""
        assert values_for(stack)["config"]["scheduler"]["task_queued_timeout"] == timeout

    def test_remote_logging_connection_exists_and_is_empty(self, values):
        """The remote-logging connection is defined for every component, as its type alone: boto3 uses the pod's role."""
        assert values["config"]["logging"]["remote_log_conn_id"] == "aws_default"
        assert {"name": "AIRFLOW_CONN_AWS_DEFAULT", "value": "aws://"} in values["env"]

    def test_every_process_gets_its_metrics_identity(self, values):
        """The chart's airflowLocalSettings is the platform's identity module, then the task pods' placement hook."""
        assert values["airflowLocalSettings"] == process_identity.SOURCE + task_pod_placement.source("airflow-tasks")
