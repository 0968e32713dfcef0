"""Tests the Airflow chart values: the chart's own schema, and every production lesson as an exact value."""

from __future__ import annotations

import copy
import json
import math
import sys
import types

import jsonschema
import pytest

from components import celery_config
from components.airflow_values import SECRETS, Wiring, airflow_values
from tests.conftest import SCHEMAS, stack_config, typed_config

SCHEMA = json.loads((SCHEMAS / "airflow-chart" / "values.schema.json").read_text())
WIRING = Wiring(
    region="eu-west-1", dag_bucket="dags-bucket", dag_reader_role_arn="arn:aws:iam::123456789012:role/dag-reader",
    component_role_arns={"workers": "arn:aws:iam::123456789012:role/worker", "triggerer": "arn:aws:iam::123456789012:role/triggerer",
                         "dagProcessor": "arn:aws:iam::123456789012:role/dag-processor", "apiServer": "arn:aws:iam::123456789012:role/api-server"})
SYNCING = ["scheduler", "dagProcessor", "triggerer", "workers"]


def values_for(stack: str, **airflow_changes) -> dict:
    config = stack_config(stack)
    config["airflow-platform:airflow"].update(airflow_changes)
    return airflow_values(typed_config(config), WIRING)


def schema_errors(values: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(values)]


@pytest.fixture(scope="module", params=["dev", "prod"])
def values(request) -> dict:
    return values_for(request.param)


@pytest.fixture(scope="module")
def prod() -> dict:
    return values_for("prod")


class TestSchema:
    """Tests the values against the chart's values.schema.json (chart 1.19.0)."""

    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_stack_values_validate(self, stack):
        """The values of both stacks pass the chart's schema."""
        assert schema_errors(values_for(stack)) == []

    def test_efs_option_validates(self):
        """The EFS variant passes the schema too."""
        config = stack_config("prod")
        config["airflow-platform:airflow"]["dagDelivery"] = "efs"
        values = airflow_values(typed_config(config), Wiring(**{**WIRING.__dict__, "dags_claim": "airflow-dags"}))
        assert schema_errors(values) == []

    @pytest.mark.parametrize("path, bad", [
        (("workers", "podAnnotations", "karpenter.sh/do-not-disrupt"), True),
        (("scheduler", "replicas"), "2"),
        (("databaseCleanup", "retentionDays"), 0),
        (("executor",), "CeleryExecutor, KubernetesExecutor"),
        (("workers", "keda", "unknownKey"), 1),
    ], ids=["boolean-annotation", "string-replicas", "zero-retention", "executor-with-space", "unknown-keda-key"])
    def test_schema_bites(self, prod, path, bad):
        """A broken value is refused by the same schema, so the check is known to bite."""
        broken = copy.deepcopy(prod)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        assert schema_errors(broken) != []


class TestExecutor:
    """Tests the executor setting."""

    def test_celery_by_default(self, values):
        """CeleryExecutor alone unless the stack asks for more; no pod launching in the Airflow namespace."""
        assert (values["executor"], values["allowPodLaunching"]) == ("CeleryExecutor", False)

    def test_celery_and_kubernetes_option(self):
        """The option is Airflow 3's multiple-executor list, and lets the KubernetesExecutor launch pods."""
        values = values_for("dev", executor="CeleryExecutor,KubernetesExecutor")
        assert (values["executor"], values["allowPodLaunching"]) == ("CeleryExecutor,KubernetesExecutor", True)
        assert schema_errors(values) == []


class TestWorkersAndKeda:
    """Tests Celery workers autoscaled by KEDA."""

    def test_prod_keda_numbers(self, prod):
        """KEDA polls every 5 s, keeps 3 to 20 workers and cools down just above the 10,800 s grace period."""
        assert prod["workers"]["keda"] == {"enabled": True, "pollingInterval": 5, "cooldownPeriod": 10_860,
                                           "minReplicaCount": 3, "maxReplicaCount": 20, "usePgbouncer": False}

    def test_dev_keda_numbers(self):
        """Dev keeps 1 to 4 workers; cooldown is grace (5,400 s) + 60 by default."""
        keda = values_for("dev")["workers"]["keda"]
        assert (keda["minReplicaCount"], keda["maxReplicaCount"], keda["cooldownPeriod"]) == (1, 4, 5460)

    def test_workers_are_a_deployment(self, values):
        """No per-worker volume: with persistence off the chart renders a Deployment (and KEDA targets it)."""
        assert values["workers"]["celery"] == {"persistence": {"enabled": False}}

    def test_keda_bypasses_pgbouncer_in_prod(self, prod):
        """PgBouncer is on in prod, and KEDA's query still goes straight to the DB."""
        assert (prod["pgbouncer"]["enabled"], prod["workers"]["keda"]["usePgbouncer"]) == (True, False)

    def test_worker_resources(self, prod):
        """Requests from config; the memory limit equals the request."""
        assert prod["workers"]["resources"] == {"requests": {"cpu": "4000m", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}


class TestCeleryRecycling:
    """Tests worker_concurrency and the custom Celery config module."""

    def test_concurrency_and_module_path(self, prod):
        """worker_concurrency from config, and celery_config_options names the shipped module."""
        assert prod["config"]["celery"] == {"worker_concurrency": 8, "celery_config_options": "airflow_platform_celery.CELERY_CONFIG"}

    def test_module_is_mounted_where_airflow_imports_it(self, values):
        """The ConfigMap's file is mounted into $AIRFLOW_HOME/config, which Airflow puts on sys.path."""
        [volume] = values["volumes"]
        [mount] = values["volumeMounts"]
        assert volume == {"name": "celery-config", "configMap": {"name": "platform-airflow-celery-config"}}
        assert mount == {"name": "celery-config", "mountPath": "/opt/airflow/config/airflow_platform_celery.py",
                         "subPath": "airflow_platform_celery.py", "readOnly": True}

    @pytest.mark.parametrize("max_tasks, max_memory", [(100, 786_432), (1, 65_536), (5000, 4_194_304)], ids=["default", "smallest", "large"])
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

    def test_workers_protected_from_voluntary_eviction(self, values):
        """A worker PDB, Karpenter's do-not-disrupt as the string "true", and not safe to evict."""
        workers = values["workers"]
        assert workers["podDisruptionBudget"] == {"enabled": True, "config": {"maxUnavailable": 1}}
        assert workers["podAnnotations"]["karpenter.sh/do-not-disrupt"] == "true"
        assert workers["safeToEvict"] is False


class TestHighAvailability:
    """Tests replicas, disruption budgets and spreading over zones."""

    def test_prod_replicas(self, prod):
        """Prod runs two of each control-plane component."""
        assert [prod[c]["replicas"] for c in ("scheduler", "apiServer", "triggerer", "dagProcessor")] == [2, 2, 2, 2]

    def test_dev_replicas(self):
        """Dev runs one of each."""
        values = values_for("dev")
        assert [values[c]["replicas"] for c in ("scheduler", "apiServer", "triggerer", "dagProcessor")] == [1, 1, 1, 1]

    @pytest.mark.parametrize("component", ["scheduler", "apiServer", "triggerer", "dagProcessor", "workers"])
    def test_disruption_budgets(self, values, component):
        """Every long-running component has a PDB that lets one pod go at a time."""
        assert values[component]["podDisruptionBudget"] == {"enabled": True, "config": {"maxUnavailable": 1}}

    @pytest.mark.parametrize("component, label, when", [
        ("scheduler", "scheduler", "DoNotSchedule"), ("apiServer", "api-server", "DoNotSchedule"), ("workers", "worker", "ScheduleAnyway")],
        ids=["scheduler", "api-server", "workers"])
    def test_prod_spreads_over_zones(self, prod, component, label, when):
        """Scheduler and API server must spread over zones in prod; workers spread where they can."""
        assert prod[component]["topologySpreadConstraints"] == [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"tier": "airflow", "release": "airflow", "component": label}}}]

    def test_pools(self, values):
        """Workers run on the worker node group, everything else on the system group."""
        assert values["nodeSelector"] == {"airflow-platform/pool": "system"}
        assert values["workers"]["nodeSelector"] == {"airflow-platform/pool": "workers"}


IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/objinsync@sha256:5d41402abc4b2a76b9719d911017c592ae5d4b1a2f3e6c7d8e9f0a1b2c3d4e5f"
EXCLUDES = ["--exclude", "**/__pycache__/**", "--exclude", "**/.dagtool-manifest.json"]
READER_ENV = [{"name": "AWS_REGION", "value": "eu-west-1"}, {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/dag-reader"}]


class TestDagDelivery:
    """Tests objinsync as init container and sidecar in every DAG-reading component, for the DAGs and the shared modules."""

    @pytest.mark.parametrize("component", SYNCING)
    def test_init_containers_and_sidecars(self, prod, component):
        """Each DAG reader pulls teams/ and shared/ once before starting, then keeps both in sync every 30 s."""
        values = prod[component]
        assert [c["name"] for c in values["extraInitContainers"]] == ["dags-sync-init", "shared-sync-init"]
        assert [c["name"] for c in values["extraContainers"]] == ["dags-sync", "shared-sync"]
        dags_init, shared_init = values["extraInitContainers"]
        dags, shared = values["extraContainers"]
        assert dags_init["args"] == ["pull", "--once", *EXCLUDES, "s3://dags-bucket/teams", "/opt/airflow/dags"]
        assert shared_init["args"] == ["pull", "--once", *EXCLUDES, "s3://dags-bucket/shared", "/opt/airflow/plugins"]
        assert dags["args"] == ["pull", "--interval", "30s", "--status-addr", ":8087", *EXCLUDES, "s3://dags-bucket/teams", "/opt/airflow/dags"]
        assert shared["args"] == ["pull", "--interval", "30s", "--status-addr", ":8088", *EXCLUDES, "s3://dags-bucket/shared", "/opt/airflow/plugins"]
        for container in (dags_init, shared_init, dags, shared):
            assert (container["image"], container["command"], container["env"]) == (IMAGE, ["/bin/objinsync"], READER_ENV)
        assert dags["volumeMounts"] == [{"name": "dags", "mountPath": "/opt/airflow/dags"}]
        assert shared["volumeMounts"] == [{"name": "shared", "mountPath": "/opt/airflow/plugins"}]

    @pytest.mark.parametrize("component", SYNCING)
    def test_folders_are_empty_dirs(self, prod, component):
        """The DAG folder and the plugins folder are emptyDirs, read-only for Airflow itself."""
        assert prod[component]["extraVolumes"] == [{"name": "dags", "emptyDir": {}}, {"name": "shared", "emptyDir": {}}]
        assert prod[component]["extraVolumeMounts"] == [{"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True},
                                                       {"name": "shared", "mountPath": "/opt/airflow/plugins", "readOnly": True}]

    def test_api_server_syncs_nothing(self, prod):
        """The API server reads DAGs from the DB (Airflow 3), so it gets no sync containers."""
        assert "extraContainers" not in prod["apiServer"] and "extraInitContainers" not in prod["apiServer"]

    def test_sidecar_probes_use_their_status_ports(self, prod):
        """Each sidecar exposes its own status port and is probed on /health, with startup time for a first sync."""
        dags, shared = prod["workers"]["extraContainers"]
        assert (dags["ports"], shared["ports"]) == ([{"name": "dags-sync", "containerPort": 8087}], [{"name": "shared-sync", "containerPort": 8088}])
        assert dags["startupProbe"] == {"httpGet": {"path": "/health", "port": 8087}, "periodSeconds": 10, "failureThreshold": 15}
        assert shared["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8088}

    @pytest.mark.parametrize("component, role", [
        ("scheduler", "dag-reader"), ("dagProcessor", "dag-processor"), ("triggerer", "triggerer"), ("workers", "worker"),
        ("apiServer", "api-server")])
    def test_service_account_roles(self, prod, component, role):
        """Each component's account carries its own role; the scheduler, needing only DAGs, the read-only DAG role."""
        assert prod[component]["serviceAccount"] == {"annotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::123456789012:role/{role}"}}

    def test_interval_from_config(self):
        """The sidecars' interval follows airflow.dagSync.intervalSeconds."""
        config = stack_config("dev")
        config["airflow-platform:airflow"]["dagSync"]["intervalSeconds"] = 15
        for sidecar in airflow_values(typed_config(config), WIRING)["triggerer"]["extraContainers"]:
            assert sidecar["args"][1:3] == ["--interval", "15s"]

    def test_efs_option_mounts_the_claim_instead(self):
        """With dagDelivery efs every component mounts the claim; only the shared modules are still synced per pod."""
        config = stack_config("prod")
        config["airflow-platform:airflow"]["dagDelivery"] = "efs"
        values = airflow_values(typed_config(config), Wiring(**{**WIRING.__dict__, "dags_claim": "airflow-dags"}))
        assert values["dags"] == {"persistence": {"enabled": True, "existingClaim": "airflow-dags"}}
        for component in SYNCING:
            assert [c["name"] for c in values[component]["extraContainers"]] == ["shared-sync"]
            assert [v["name"] for v in values[component]["extraVolumes"]] == ["shared"]


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
        """Dev's chart Redis gets its password from a Secret; prod turns it off for ElastiCache."""
        assert values_for("dev")["redis"] == {"enabled": True, "passwordSecretName": SECRETS.redis_password}
        assert prod["redis"] == {"enabled": False}

    def test_pgbouncer_config_from_secrets(self, prod):
        """PgBouncer reads its ini and users from Secrets, so the DB password stays out of the values."""
        assert prod["pgbouncer"] == {"enabled": True, "replicas": 2, "configSecretName": SECRETS.pgbouncer_config,
                                     "metricsExporterSidecar": {"statsSecretName": SECRETS.pgbouncer_stats},
                                     "maxClientConn": 1000, "metadataPoolSize": 40,
                                     "podDisruptionBudget": {"enabled": True, "config": {"maxUnavailable": 1}}}

    def test_admin_user_password_from_a_secret(self, values):
        """The admin user is created without the chart's default password: the job reads it from a Secret."""
        job = values["createUserJob"]
        assert job["env"] == [{"name": "AIRFLOW_PLATFORM_ADMIN_PASSWORD",
                               "valueFrom": {"secretKeyRef": {"name": SECRETS.admin_password, "key": "password"}}}]
        assert '--password "$AIRFLOW_PLATFORM_ADMIN_PASSWORD"' in job["args"][-1]
        assert (job["useHelmHooks"], values["migrateDatabaseJob"]["useHelmHooks"]) == (False, False)


class TestConfiguration:
    """Tests Airflow configuration the platform sets."""

    def test_secrets_manager_backend(self, values):
        """Connections and variables come from the platform's Secrets Manager prefix."""
        secrets = values["config"]["secrets"]
        assert secrets["backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
        assert json.loads(secrets["backend_kwargs"]) == {"connections_prefix": "airflow/connections",
                                                         "variables_prefix": "airflow/variables", "region_name": "eu-west-1"}

    def test_remote_logs_to_the_bucket(self, values):
        """Task logs go to the DAG bucket's logs/ prefix."""
        logging = values["config"]["logging"]
        assert (logging["remote_logging"], logging["remote_base_log_folder"]) == ("True", "s3://dags-bucket/logs")

    @pytest.mark.parametrize("stack, schedule, retention", [("dev", "0 3 * * *", 14), ("prod", "0 2 * * 0", 90)], ids=["dev", "prod"])
    def test_database_cleanup(self, stack, schedule, retention):
        """The chart's databaseCleanup CronJob runs on the stack's schedule with its retention."""
        assert values_for(stack)["databaseCleanup"] == {"enabled": True, "schedule": schedule, "retentionDays": retention}

    def test_parallelism_and_pools(self, prod):
        """core.parallelism and the SQLAlchemy pool sizes the capacity contract is computed from."""
        assert prod["config"]["core"] == {"parallelism": 256, "load_examples": "False"}
        assert prod["config"]["database"] == {"sql_alchemy_pool_size": 5, "sql_alchemy_max_overflow": 10}

    def test_airflow_version_follows_the_image(self):
        """airflowVersion is the image tag's version, so the chart's version switches match the image."""
        values = values_for("dev", image={"repository": "registry.example/airflow", "tag": "3.1.7-python3.12"})
        assert (values["airflowVersion"], values["images"]["airflow"]) == ("3.1.7", {"repository": "registry.example/airflow", "tag": "3.1.7-python3.12"})
