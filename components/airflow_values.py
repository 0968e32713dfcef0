"""The Airflow chart's values, built from the typed config and the names of what the program created.

A pure function: no Pulumi in here, so tests build the values for any config and validate them against the
chart's own `values.schema.json`. Every secret is referenced by the name of a Kubernetes Secret; no secret
value ever enters the values (they would land in the Helm release, readable by anyone who can list it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from components import celery_config, node_pools, process_identity, sso, task_pod_placement
from components.charts import AIRFLOW
from components.images import airflow_version, image_values
from components.config import DagSyncConfig, PlatformConfig
from components.names import (AIRFLOW_RELEASE, DAG_READERS, DO_NOT_DISRUPT, LOGS_PREFIX, POOL_LABEL, PUBLISH_MANIFEST, SHARED_PREFIX,
                              TEAMS_PREFIX)
from components.observability_values import airflow_metrics_config

AIRFLOW_HOME = "/opt/airflow"  # the image's, and the chart's airflowHome
DAGS_PATH = "/opt/airflow/dags"
PLUGINS_PATH = "/opt/airflow/plugins"
OBJINSYNC_STATUS_PORT = 8087
AIRFLOW_UID = 50000
SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
# The chart's default auth manager: native users and roles, with DAG-level permissions (team roles rely on them).
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
# The longest task, declared on the workers: the policy pack checks the grace period against it (values are its contract).
LONGEST_TASK_ANNOTATION = "airflow-platform/longest-task-minutes"
ADMIN_PASSWORD_ENV = "AIRFLOW_PLATFORM_ADMIN_PASSWORD"
REMOTE_LOG_CONNECTION = "aws_default"
# Behind the entry's load balancer (one hop), what werkzeug's ProxyFix in FAB may take from the request, by [fab] option:
# the ALB sets X-Forwarded-For, -Proto and -Port, and passes the client's Host through without adding X-Forwarded-Host or
# -Prefix, so any value of those two came from the client. (The chart turns the proxy fix on, and the FAB provider's
# defaults trust one of each header, which lets a forged one move the OAuth redirect URI and every absolute URL FAB
# builds to another host or path.)
BEHIND_THE_ENTRY = {"proxy_fix_x_for": 1, "proxy_fix_x_proto": 1, "proxy_fix_x_port": 1, "proxy_fix_x_host": 0, "proxy_fix_x_prefix": 0}
# The chart's `component` label of each component's pods.
COMPONENT_LABELS = {"scheduler": "scheduler", "apiServer": "api-server", "workers": "worker", "triggerer": "triggerer",
                    "dagProcessor": "dag-processor"}

# The Pod Security Standards' restricted profile, which the Airflow namespace enforces, for every pod of the chart that runs
# the Airflow image (the chart applies the global securityContexts wherever a component sets none of its own): the image's
# airflow user, group 0 (the image is built so that group 0 owns what airflow writes), and the runtime's seccomp profile.
AIRFLOW_POD_SECURITY = {"runAsUser": AIRFLOW_UID, "runAsGroup": 0, "fsGroup": 0, "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"}}
# Every container: no privilege escalation, no capabilities, and a read-only root. An Airflow process writes only to
# $AIRFLOW_HOME/logs (the chart's emptyDir in the pods that write logs: scheduler, DAG processor, triggerer, worker) and to
# /tmp (a task's scratch files, a BashOperator's working directory), an emptyDir of every pod (TMP below).
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
TMP, TMP_PATH = "tmp", "/tmp"
# The images beside Airflow's: PgBouncer's and its exporter run as the chart's nobody (65534); Redis as the redis user of
# the official image (999), which owns its /data volume through fsGroup (the chart's default, uid 0, is root).
PGBOUNCER_UID, REDIS_UID = 65534, 999


def _pod_security(uid: int) -> dict[str, Any]:
    return {"runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def _sized(cpu_millicores: int, memory_mib: int, limit_mib: int) -> dict[str, Any]:
    return {"requests": {"cpu": f"{cpu_millicores}m", "memory": f"{memory_mib}Mi"}, "limits": {"memory": f"{limit_mib}Mi"}}


# What the pods whose size the stack does not configure request and may use (the workers' size is airflow.workers.*). One
# Airflow process peaks at about 256 MiB resident (the end-to-end suite's figures: the worker's main process 256 MiB, a task
# supervisor 260 MiB): a component requests its processes' share and is limited to twice that, room for a parse or a burst.
# CPU requests stay small: the control plane idles between its loops, on two-vCPU system nodes it shares with the cluster's
# controllers, and no CPU limit throttles it.
AIRFLOW_PROCESS_MIB = 256
# The components the chart gives a log groomer sidecar (the workers' logs go to S3 and are deleted at once).
LOG_GROOMED = ("scheduler", "dagProcessor", "triggerer")
SIZES = {
    "scheduler": _sized(250, 1024, 2048),      # the scheduler loop, the executor, its log server
    "dagProcessor": _sized(250, 1024, 2048),   # the manager and its parsing processes ([dag_processor] parsing_processes, 2)
    "triggerer": _sized(100, 512, 1024),       # one asyncio loop for every deferred task
    "job": _sized(100, 512, 1024),             # a migration, the admin user, the DB cleanup: one airflow command each
    "logGroomer": _sized(10, 32, 64),          # a shell loop deleting old log files
    "pgbouncer": _sized(100, 128, 256),        # a few KiB per client connection
    "pgbouncerExporter": _sized(10, 32, 64),
    "redis": _sized(100, 128, 512),            # the in-cluster broker of a dev stack: queued task messages only
}


def api_server_size(workers: int) -> dict[str, Any]:
    """The API server: its uvicorn workers ([api] workers) and the process that supervises them, one Airflow process each."""
    memory = (workers + 1) * AIRFLOW_PROCESS_MIB
    return _sized(250, memory, 2 * memory)


def calls_the_kubernetes_api(cfg: PlatformConfig) -> dict[str, bool]:
    """Which components get a Kubernetes API token (their pods' service accounts automount one): the workers, whose
    KubernetesPodOperator tasks create, watch and delete pods in the task namespace, and the triggerer, which watches the pods
    of deferred ones; with the KubernetesExecutor also the scheduler, which launches and watches the task pods, and the API
    server, which reads a running task pod's log from the API. No other component calls the API."""
    kubernetes_executor = "KubernetesExecutor" in cfg.airflow.executor
    return {"workers": True, "triggerer": True, "scheduler": kubernetes_executor, "apiServer": kubernetes_executor,
            "dagProcessor": False}


@dataclass(frozen=True)
class SecretNames:
    """Kubernetes Secrets the program creates in the Airflow namespace."""

    metadata: str = "platform-airflow-metadata"
    broker: str = "platform-airflow-broker"
    fernet_key: str = "platform-airflow-fernet-key"
    api_secret_key: str = "platform-airflow-api-secret-key"
    jwt_secret: str = "platform-airflow-jwt-secret"
    admin_password: str = "platform-airflow-admin-password"
    pgbouncer_config: str = "platform-airflow-pgbouncer-config"
    pgbouncer_stats: str = "platform-airflow-pgbouncer-stats"
    redis_password: str = "platform-airflow-redis-password"
    sso_client_secret: str = "platform-airflow-sso"


SECRETS = SecretNames()
CELERY_CONFIG_MAP = "platform-airflow-celery-config"


@dataclass(frozen=True)
class Wiring:
    """What the values need from resources the program created (plain strings, resolved)."""

    region: str
    dag_bucket: str
    dag_reader_role_arn: str
    # Runtime role of each component that needs AWS beyond reading DAGs (keys of SERVICE_ACCOUNTS).
    component_role_arns: dict[str, str] = field(default_factory=dict)
    # With dagDelivery efs: the ReadWriteMany claim every component mounts.
    dags_claim: Optional[str] = None


def _zone_spread(component: str, hard: bool) -> list[dict[str, Any]]:
    return [{
        "maxSkew": 1,
        "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"tier": "airflow", "release": AIRFLOW_RELEASE, "component": COMPONENT_LABELS[component]}},
    }]


def _pdb() -> dict[str, Any]:
    return {"enabled": True, "config": {"maxUnavailable": 1}}


@dataclass(frozen=True)
class SyncTarget:
    """One prefix of the DAG bucket that objinsync mirrors into a folder of every DAG-reading pod."""

    name: str         # of the volume, and the stem of the containers' names
    prefix: str
    path: str
    status_port: int  # objinsync's /health and /metrics (two daemons in one pod need two ports)


# Team DAGs into the DAG folder (a team's files land in dags/<team>/); the platform's shared modules into the
# plugins folder, which Airflow puts on sys.path, so `import airflow_platform_notify` works everywhere.
DAGS = SyncTarget("dags", TEAMS_PREFIX, DAGS_PATH, OBJINSYNC_STATUS_PORT)
SHARED = SyncTarget("shared", SHARED_PREFIX, PLUGINS_PATH, OBJINSYNC_STATUS_PORT + 1)


def objinsync_container(sync: DagSyncConfig, target: SyncTarget, bucket: str, region: str, once: bool,
                        role_arn: Optional[str] = None, path: Optional[str] = None) -> dict[str, Any]:
    """An objinsync container mirroring `target`'s prefix into its folder (or `path`): a single pull, or a daemon."""
    path = path or target.path
    mode = ["--once"] if once else ["--interval", f"{sync.interval_seconds}s", "--status-addr", f":{target.status_port}"]
    # objinsync asks the instance metadata service for the region otherwise, which IMDSv2 with one hop refuses.
    env = [{"name": "AWS_REGION", "value": region}]
    if role_arn:
        # The pod's own role may write logs and read secrets; the sync needs, and gets, read-only access to the bucket.
        env.append({"name": "AWS_ROLE_ARN", "value": role_arn})
    container: dict[str, Any] = {
        "name": f"{target.name}-sync-init" if once else f"{target.name}-sync",
        "image": sync.image,
        "command": ["/bin/objinsync"],
        "args": ["pull", *mode, "--exclude", "**/__pycache__/**", "--exclude", f"**/{PUBLISH_MANIFEST}",
                 f"s3://{bucket}/{target.prefix}", path],
        "env": env,
        "volumeMounts": [{"name": target.name, "mountPath": path}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"runAsUser": AIRFLOW_UID, "runAsGroup": 0, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }
    if not once:
        health = {"httpGet": {"path": "/health", "port": target.status_port}}
        container["ports"] = [{"name": f"{target.name}-sync", "containerPort": target.status_port}]
        # /health turns good after the first timed sync: allow for the interval plus a slow first pull.
        container["startupProbe"] = {**health, "periodSeconds": 10, "failureThreshold": sync.interval_seconds // 10 + 12}
        container["livenessProbe"] = {**health, "periodSeconds": 30, "failureThreshold": 3}
    return container


def native_sidecar(daemon: dict[str, Any], sync: DagSyncConfig) -> dict[str, Any]:
    """The daemon as a native sidecar: an init container that restarts always, so it runs beside the pod's containers,
    stops after them, and does not keep a pod running once they end. The workers' pod template is the
    KubernetesExecutor's too, and a task pod whose sidecars ran on as ordinary containers would never complete. A
    sidecar's startup probe would hold the main containers until its first timed sync, so its liveness waits instead."""
    sidecar = {key: value for key, value in daemon.items() if key != "startupProbe"}
    sidecar["restartPolicy"] = "Always"
    # The first timed sync comes after one interval, and a slow first pull may take a minute or two more.
    sidecar["livenessProbe"] = {**daemon["livenessProbe"], "initialDelaySeconds": sync.interval_seconds + 120}
    return sidecar


def _dag_reader(cfg: PlatformConfig, wiring: Wiring) -> dict[str, Any]:
    """What a DAG-reading component adds: folders filled by objinsync, once before it starts (so a new worker never
    takes a task before it has the DAGs) and continuously after, as native sidecars (so new DAGs appear within the
    interval). With the EFS volume the DAG folder is the shared claim instead, and only the shared modules are synced
    per pod."""
    targets = [SHARED] if cfg.airflow.dag_delivery == "efs" else [DAGS, SHARED]
    sync = cfg.airflow.dag_sync

    def container(target: SyncTarget, once: bool) -> dict[str, Any]:
        return objinsync_container(sync, target, wiring.dag_bucket, wiring.region, once=once, role_arn=wiring.dag_reader_role_arn)

    return {
        "extraVolumes": [{"name": t.name, "emptyDir": {}} for t in targets],
        "extraVolumeMounts": [{"name": t.name, "mountPath": t.path, "readOnly": True} for t in targets],
        "extraInitContainers": [*(container(t, once=True) for t in targets),
                                *(native_sidecar(container(t, once=False), sync) for t in targets)],
    }


def _service_account(cfg: PlatformConfig, component: str, wiring: Wiring) -> dict[str, Any]:
    # Pods whose objinsync containers read the bucket need an annotated account for IRSA to reach them. The role's web
    # identity token is not the API token: EKS's pod identity webhook projects a token of its own (audience
    # sts.amazonaws.com) into every pod of an annotated account, so IRSA works with automountServiceAccountToken false.
    role = wiring.component_role_arns.get(component, wiring.dag_reader_role_arn if component in DAG_READERS else None)
    account: dict[str, Any] = {"automountServiceAccountToken": calls_the_kubernetes_api(cfg)[component]}
    if role:
        account["annotations"] = {"eks.amazonaws.com/role-arn": role}
    return account


def _control_plane(cfg: PlatformConfig, wiring: Wiring, component: str, replicas: int, spread: bool) -> dict[str, Any]:
    values: dict[str, Any] = {"replicas": replicas, "podDisruptionBudget": _pdb(), "serviceAccount": _service_account(cfg, component, wiring)}
    if component in SIZES:
        values["resources"] = SIZES[component]
    if component in LOG_GROOMED:
        values["logGroomerSidecar"] = {"resources": SIZES["logGroomer"]}
    if spread:
        values["topologySpreadConstraints"] = _zone_spread(component, hard=bool(cfg.production))
    if component in DAG_READERS:
        values.update(_dag_reader(cfg, wiring))
    return values


def _workers(cfg: PlatformConfig, wiring: Wiring) -> dict[str, Any]:
    workers = cfg.airflow.workers
    memory = f"{workers.memory_gib}Gi"
    return {
        # A Deployment: workers keep no state, so no per-worker volume (logs go to S3).
        "celery": {"persistence": {"enabled": False}},
        "keda": {
            "enabled": True,
            "pollingInterval": workers.polling_interval_seconds,
            "cooldownPeriod": workers.cooldown_seconds,
            "minReplicaCount": workers.min_replicas,
            "maxReplicaCount": workers.max_replicas,
            # KEDA's query must see the DB itself: through PgBouncer's transaction pooling it would hold a pool slot.
            "usePgbouncer": False,
        },
        # Time for a worker that is asked to stop to let its running tasks finish: 1.5 × the longest task.
        "terminationGracePeriodSeconds": cfg.airflow.worker_grace_seconds,
        "safeToEvict": False,
        "podAnnotations": {DO_NOT_DISRUPT: "true", LONGEST_TASK_ANNOTATION: str(cfg.airflow.longest_task_minutes)},
        "podDisruptionBudget": _pdb(),
        "topologySpreadConstraints": _zone_spread("workers", hard=False),
        # Karpenter's worker NodePool: its nodes carry the label and a taint only workers tolerate.
        "nodeSelector": {POOL_LABEL: "workers"},
        "tolerations": [node_pools.toleration("workers")],
        "resources": {"requests": {"cpu": f"{workers.cpu_millicores}m", "memory": memory}, "limits": {"memory": memory}},
        "serviceAccount": _service_account(cfg, "workers", wiring),
        **_dag_reader(cfg, wiring),
    }


def _pgbouncer(cfg: PlatformConfig) -> dict[str, Any]:
    pgbouncer = cfg.airflow.pgbouncer
    if not pgbouncer.enabled:
        return {"enabled": False}
    return {
        "enabled": True,
        "replicas": pgbouncer.replicas,
        # The program writes pgbouncer.ini and users.txt itself, so the DB password stays out of the values.
        "configSecretName": SECRETS.pgbouncer_config,
        "metricsExporterSidecar": {"statsSecretName": SECRETS.pgbouncer_stats, "resources": SIZES["pgbouncerExporter"],
                                   "securityContexts": {"container": CONTAINER_SECURITY}},
        "maxClientConn": pgbouncer.max_client_conn,
        "metadataPoolSize": pgbouncer.pool_size,
        "podDisruptionBudget": _pdb(),
        "resources": SIZES["pgbouncer"],
        # PgBouncer writes only its Unix socket, into /tmp (the global emptyDir, which the chart mounts here too).
        "securityContexts": {"pod": _pod_security(PGBOUNCER_UID), "container": CONTAINER_SECURITY},
        "serviceAccount": {"automountServiceAccountToken": False},
    }


def _config(cfg: PlatformConfig, wiring: Wiring) -> dict[str, dict[str, Any]]:
    airflow = cfg.airflow
    config: dict[str, dict[str, Any]] = {
        "core": {"parallelism": airflow.parallelism, "load_examples": "False"},
        "celery": {"worker_concurrency": airflow.workers.concurrency, "celery_config_options": celery_config.IMPORT_PATH},
        "database": {"sql_alchemy_pool_size": airflow.sql_alchemy_pool_size, "sql_alchemy_max_overflow": airflow.sql_alchemy_max_overflow},
        "api": {"workers": airflow.api_server_workers},
        # Airflow requeues a task queued this long (default 600 s) and clears its queue time, which would keep every wait
        # under the queued-task SLA: it may requeue only after the alert had its chance.
        "scheduler": {"task_queued_timeout": (cfg.alerting.queued_task_sla_minutes + 10) * 60},
        "metrics": airflow_metrics_config(cfg),
        "logging": {
            "remote_logging": "True",
            "remote_base_log_folder": f"s3://{wiring.dag_bucket}/{LOGS_PREFIX}",
            "remote_log_conn_id": REMOTE_LOG_CONNECTION,
            "delete_local_logs": "True",
        },
        "secrets": {
            "backend": SECRETS_BACKEND,
            "backend_kwargs": json.dumps({"connections_prefix": f"{airflow.secrets_prefix}/connections",
                                          "variables_prefix": f"{airflow.secrets_prefix}/variables",
                                          "region_name": wiring.region}),
        },
    }
    if cfg.entry is not None:
        # The UI's links, its redirects after login and logout, and the login page's address use the public https URL; its
        # path is empty, so the chart's execution API URL (the api-server Service, plain http in the cluster) stays as it is.
        config["api"]["base_url"] = f"https://{cfg.entry.airflow_host}"
        # The ALB ends TLS: FAB builds the OAuth redirect URI from the forwarded scheme, host and port, and its session cookie
        # only travels over https (the entry's port 80 only redirects).
        config["fab"] = {"enable_proxy_fix": "True", **BEHIND_THE_ENTRY, "cookie_secure": "True"}
    if cfg.sso is not None:
        config.update(sso.airflow_settings(cfg.sso))
    return config


def _job() -> dict[str, Any]:
    """What each of the chart's Jobs (the migration, the admin user, the DB cleanup) gets: its size, and no API token."""
    return {"resources": SIZES["job"], "serviceAccount": {"automountServiceAccountToken": False}}


def _redis() -> dict[str, Any]:
    """The in-cluster broker (stacks without ElastiCache): restricted, writing only its /data volume."""
    return {"enabled": True, "passwordSecretName": SECRETS.redis_password, "resources": SIZES["redis"],
            "securityContexts": {"pod": _pod_security(REDIS_UID), "container": CONTAINER_SECURITY},
            "serviceAccount": {"automountServiceAccountToken": False}}


def _create_admin_user() -> dict[str, Any]:
    # The chart's job would put the password into its arguments (and so into the values); read it from a Secret instead.
    return {
        "enabled": True,
        "useHelmHooks": False,
        "applyCustomEnv": False,
        **_job(),
        "env": [{"name": ADMIN_PASSWORD_ENV, "valueFrom": {"secretKeyRef": {"name": SECRETS.admin_password, "key": "password"}}}],
        "args": ["bash", "-c", "exec airflow users create --role Admin --username admin --email admin@example.com "
                               f"--firstname Platform --lastname Admin --password \"${ADMIN_PASSWORD_ENV}\""],
    }


def _api_server(cfg: PlatformConfig, wiring: Wiring) -> dict[str, Any]:
    values = _control_plane(cfg, wiring, "apiServer", cfg.airflow.replicas.api_server, spread=True)
    values["resources"] = api_server_size(cfg.airflow.api_server_workers)
    # The chart binds its pod-log reader Role to the API server for the KubernetesExecutor's running task pods; without that
    # executor there are none, and the API server holds no token to use it with.
    values["allowPodLogReading"] = calls_the_kubernetes_api(cfg)["apiServer"]
    if cfg.sso is not None:
        # The chart mounts it as the API server's $AIRFLOW_HOME/webserver_config.py, which the FAB auth manager loads; the
        # client secret reaches the module only through the environment, from its Secret.
        values["apiServerConfig"] = sso.fab_config(cfg.sso, cfg.teams)
        values["env"] = [*values.get("env", []), {"name": sso.CLIENT_SECRET_ENV, "valueFrom": {"secretKeyRef": {
            "name": SECRETS.sso_client_secret, "key": sso.CLIENT_SECRET_KEY}}}]
    return values


def _images(cfg: PlatformConfig) -> dict[str, Any]:
    """The images of the chart's components that run (Redis with the in-cluster broker, PgBouncer's when on), and the
    KubernetesExecutor's pod template in the Airflow image too."""
    pins = cfg.images.pinned()
    images = {**image_values(AIRFLOW.name, pins)["images"], "pod_template": pins["airflow"].values()}
    off = [*(["redis"] if cfg.broker.mode != "in-cluster" else []),
           *(["pgbouncer", "pgbouncerExporter"] if not cfg.airflow.pgbouncer.enabled else [])]
    return {name: image for name, image in images.items() if name not in off}


def airflow_values(cfg: PlatformConfig, wiring: Wiring) -> dict[str, Any]:
    """The values of the Airflow chart release for this stack."""
    airflow, replicas = cfg.airflow, cfg.airflow.replicas
    in_cluster_broker = cfg.broker.mode == "in-cluster"
    values: dict[str, Any] = {
        "executor": airflow.executor,
        "airflowVersion": airflow_version(cfg.images.pinned()["airflow"]),
        # The chart's images, and the KubernetesExecutor's pod template in the Airflow image too.
        "images": _images(cfg),
        # Pods may only be launched by the KubernetesExecutor; KubernetesPodOperator tasks go to their own namespace.
        "allowPodLaunching": "KubernetesExecutor" in airflow.executor,
        "postgresql": {"enabled": False},
        "redis": _redis() if in_cluster_broker else {"enabled": False},
        "data": {"metadataSecretName": SECRETS.metadata, "brokerUrlSecretName": SECRETS.broker},
        "fernetKeySecretName": SECRETS.fernet_key,
        "apiSecretKeySecretName": SECRETS.api_secret_key,
        "jwtSecretName": SECRETS.jwt_secret,
        "nodeSelector": {POOL_LABEL: "system"},
        "env": [{"name": "AWS_REGION", "value": wiring.region}, {"name": "AWS_DEFAULT_REGION", "value": wiring.region},
                # The remote logging connection, with nothing in it: boto3's own chain (the pod's IRSA role). Airflow 3.1's
                # task supervisor fetches it before every task and fails the task outright when it does not exist.
                {"name": f"AIRFLOW_CONN_{REMOTE_LOG_CONNECTION.upper()}", "value": "aws://"}],
        # Mounted by the chart into $AIRFLOW_HOME/config of every Airflow container, and imported by every process.
        "airflowLocalSettings": process_identity.SOURCE + task_pod_placement.source(airflow.task_pods.namespace),
        "securityContexts": {"pod": AIRFLOW_POD_SECURITY, "containers": CONTAINER_SECURITY},
        "volumes": [{"name": "celery-config", "configMap": {"name": CELERY_CONFIG_MAP}}, {"name": TMP, "emptyDir": {}}],
        "volumeMounts": [{"name": "celery-config", "mountPath": f"{celery_config.MOUNT_DIRECTORY}/{celery_config.FILE_NAME}",
                          "subPath": celery_config.FILE_NAME, "readOnly": True},
                         {"name": TMP, "mountPath": TMP_PATH}],
        "config": _config(cfg, wiring),
        "workers": _workers(cfg, wiring),
        "scheduler": _control_plane(cfg, wiring, "scheduler", replicas.scheduler, spread=True),
        "apiServer": _api_server(cfg, wiring),
        # Triggerer logs go to S3 like task logs, so no per-triggerer volume.
        "triggerer": {**_control_plane(cfg, wiring, "triggerer", replicas.triggerer, spread=False), "persistence": {"enabled": False}},
        "dagProcessor": {"enabled": True, **_control_plane(cfg, wiring, "dagProcessor", replicas.dag_processor, spread=False)},
        "pgbouncer": _pgbouncer(cfg),
        # Metrics go out over OTLP to the collector; with the StatsD exporter on, Airflow would pick StatsD instead.
        "statsd": {"enabled": False},
        # Jobs run as plain Kubernetes Jobs: Helm hooks would wait on pods that wait on the migration.
        "migrateDatabaseJob": {"useHelmHooks": False, "applyCustomEnv": False, **_job()},
        "createUserJob": _create_admin_user(),
        "databaseCleanup": {"enabled": True, "schedule": airflow.database_cleanup.schedule,
                            "retentionDays": airflow.database_cleanup.retention_days,
                            # --skip-archive: without it every purged row is copied into an _airflow_deleted__* table.
                            "skipArchive": airflow.database_cleanup.skip_archive, **_job()},
    }
    if airflow.dag_delivery == "efs":
        values["dags"] = {"persistence": {"enabled": True, "existingClaim": wiring.dags_claim}}
    return values
