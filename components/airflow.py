"""Airflow: its namespace, the Secrets and the Celery config module it reads, and the official chart's release.

Secrets are generated here (pulumi_random) or derived from the DB and broker, and handed to the chart only by
the names of Kubernetes Secrets. The release waits for KEDA (the worker ScaledObject is a KEDA resource).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Sequence
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import celery_config, sso, team_roles
from components.airflow_values import (AIRFLOW_HOME, AIRFLOW_POD_SECURITY, CELERY_CONFIG_MAP, CONTAINER_SECURITY, FAB_AUTH_MANAGER, SECRETS,
                                       SIZES, TMP, TMP_PATH, Wiring, airflow_values)
from components.charts import AIRFLOW as CHART, release_source
from components.config import PlatformConfig
from components.dag_volume import DagVolume, DagVolumeArgs
from components.metadata_db import DATABASE_NAME, MASTER_USERNAME, PORT as DB_PORT
from components.names import AIRFLOW_NAMESPACE as NAMESPACE, AIRFLOW_RELEASE as RELEASE, POOL_LABEL, READINESS_GATE_LABELS
from components.task_metrics import TaskMetrics, TaskMetricsArgs
from components.task_pods import POD_SECURITY_LABELS

PGBOUNCER_PORT = 6543
PGBOUNCER_DATABASE = "airflow-metadata"
REDIS_PORT = 6379


def fernet_key(b64_url: str) -> str:
    """A Fernet key from 32 random bytes in unpadded URL-safe base64 (pulumi_random's b64_url): Fernet wants the padding."""
    return b64_url + "=" * (-len(b64_url) % 4)


def postgres_url(password: str, host: str, port: int, database: str, sslmode: str) -> str:
    return f"postgresql://{MASTER_USERNAME}:{quote(password, safe='')}@{host}:{port}/{database}?sslmode={sslmode}"


def elasticache_broker_url(token: str, host: str, port: int) -> str:
    # rediss: TLS to ElastiCache, and the server certificate is verified.
    return f"rediss://:{quote(token, safe='')}@{host}:{port}/0?ssl_cert_reqs=required"


def in_cluster_broker_url(password: str) -> str:
    return f"redis://:{quote(password, safe='')}@{RELEASE}-redis:{REDIS_PORT}/0"


def pgbouncer_ini(db_host: str, pool_size: int, max_client_conn: int) -> str:
    """PgBouncer's configuration: transaction pooling in front of the DB, TLS to the DB."""
    return "\n".join([
        "[databases]",
        f"{PGBOUNCER_DATABASE} = host={db_host} dbname={DATABASE_NAME} port={DB_PORT} pool_size={pool_size}",
        "",
        "[pgbouncer]",
        "pool_mode = transaction",
        f"listen_port = {PGBOUNCER_PORT}",
        "listen_addr = *",
        "auth_type = scram-sha-256",
        "auth_file = /etc/pgbouncer/users.txt",
        f"stats_users = {MASTER_USERNAME}",
        "ignore_startup_parameters = extra_float_digits",
        f"max_client_conn = {max_client_conn}",
        "verbose = 0",
        "log_disconnections = 0",
        "log_connections = 0",
        # The DB refuses plain connections (rds.force_ssl); PgBouncer must speak TLS to it.
        "server_tls_sslmode = require",
        "server_tls_ciphers = normal",
        "",
    ])


@dataclass
class AirflowArgs:
    config: PlatformConfig
    provider: k8s.Provider
    keda: pulumi.Resource
    region: str
    dag_bucket: pulumi.Input[str]
    dag_reader_role_arn: pulumi.Input[str]
    component_role_arns: dict[str, pulumi.Output[str]]
    db_address: pulumi.Input[str]
    db_password: pulumi.Output[str]
    broker_address: Optional[pulumi.Input[str]] = None
    broker_auth_token: Optional[pulumi.Output[str]] = None
    dag_volume: Optional[DagVolumeArgs] = None
    # What must exist before the release can become ready: the NodePools its workers are scheduled on.
    node_pools: Sequence[pulumi.Resource] = ()


class Airflow(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: AirflowArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Airflow", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        self._name = name
        cfg = args.config
        labels = {**POD_SECURITY_LABELS, **(READINESS_GATE_LABELS if cfg.entry is not None else {})}
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE, "labels": labels},
                                          opts=pulumi.ResourceOptions(parent=self))
        self.namespace = namespace.metadata["name"]

        secrets = [*self._generated_secrets(), *self._connection_secrets(args), *self._sso_secret(cfg)]
        celery_module = k8s.core.v1.ConfigMap(
            f"{name}-celery-config", metadata={"name": CELERY_CONFIG_MAP, "namespace": self.namespace},
            data={celery_config.FILE_NAME: celery_config.celery_config_module(
                cfg.airflow.workers.max_tasks_per_child, cfg.airflow.workers.max_memory_per_child_kib)},
            opts=pulumi.ResourceOptions(parent=self))

        dependencies: list[pulumi.Resource] = [args.keda, *args.node_pools, celery_module, *secrets]
        dags_claim: pulumi.Input[Optional[str]] = None
        if args.dag_volume is not None:
            volume = DagVolume(f"{name}-dag-volume", dataclasses.replace(args.dag_volume, namespace=self.namespace),
                               opts=pulumi.ResourceOptions(parent=self))
            dags_claim = volume.claim_name
            dependencies.append(volume)

        roles = args.component_role_arns
        wiring = pulumi.Output.all(args.dag_bucket, args.dag_reader_role_arn, dags_claim, pulumi.Output.all(**roles)).apply(
            lambda values: Wiring(region=args.region, dag_bucket=values[0], dag_reader_role_arn=values[1], dags_claim=values[2],
                                  component_role_arns=values[3]))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE,
            **release_source(CHART, cfg.chart_repositories.of(CHART)),
            namespace=self.namespace,
            values=wiring.apply(lambda resolved: airflow_values(cfg, resolved)),
            # Migrations on a large metadata DB take a while; the release is done when the migration Job is.
            timeout=1800,
            wait_for_jobs=True,
            max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=dependencies),
        )
        self._team_roles(args)
        # After the release: the exporter reads tables the migration creates.
        TaskMetrics(f"{name}-task-metrics", TaskMetricsArgs(cfg, self.namespace),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        self.register_outputs({"namespace": self.namespace, "status": self.release.status})

    def _team_roles(self, args: AirflowArgs) -> None:
        """After the release (and so the migration), create or update one Airflow role per team."""
        cfg = args.config
        teams = [team.name for team in cfg.teams]
        k8s.batch.v1.Job(
            f"{self._name}-team-roles",
            metadata={"name": team_roles.job_name(teams), "namespace": self.namespace},
            spec={
                "backoffLimit": 4,
                "template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "nodeSelector": {POOL_LABEL: "system"},
                    # The roles are rows in the metadata DB: the Job never calls the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "securityContext": AIRFLOW_POD_SECURITY,
                    "containers": [{
                        "name": "team-roles",
                        "image": cfg.images.pinned()["airflow"].reference,
                        "command": ["bash", "-c", team_roles.team_roles_script(teams)],
                        "env": [
                            {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                             "valueFrom": {"secretKeyRef": {"name": SECRETS.metadata, "key": "connection"}}},
                            {"name": "AIRFLOW__CORE__AUTH_MANAGER", "value": FAB_AUTH_MANAGER},
                        ],
                        "resources": SIZES["job"],
                        "securityContext": CONTAINER_SECURITY,
                        # The root is read-only. No airflow.cfg is mounted, and before any command Airflow writes its
                        # defaults to $AIRFLOW_HOME/airflow.cfg and creates $AIRFLOW_HOME/logs: the home is an emptyDir here
                        # (the image keeps nothing else there), and /tmp one too, as in every Airflow pod.
                        "volumeMounts": [{"name": TMP, "mountPath": TMP_PATH}, {"name": "home", "mountPath": AIRFLOW_HOME}],
                    }],
                    "volumes": [{"name": TMP, "emptyDir": {}}, {"name": "home", "emptyDir": {}}],
                }},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release], delete_before_replace=True))

    def _secret(self, suffix: str, secret_name: str, data: dict[str, pulumi.Input[str]]) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            f"{self._name}-{suffix}", metadata={"name": secret_name, "namespace": self.namespace}, type="Opaque",
            string_data={key: pulumi.Output.secret(value) for key, value in data.items()},
            opts=pulumi.ResourceOptions(parent=self))

    def _password(self, suffix: str, length: int) -> pulumi.Output[str]:
        return random.RandomPassword(f"{self._name}-{suffix}", length=length, special=False, opts=pulumi.ResourceOptions(parent=self)).result

    def _generated_secrets(self) -> list[k8s.core.v1.Secret]:
        # RandomId is not a secret to its provider: every encoding of the bytes is marked secret here, so state keeps none in clear.
        fernet = random.RandomId(f"{self._name}-fernet", byte_length=32, opts=pulumi.ResourceOptions(
            parent=self, additional_secret_outputs=["b64_url", "b64_std", "hex", "dec"]))
        return [
            self._secret("fernet-key", SECRETS.fernet_key, {"fernet-key": fernet.b64_url.apply(fernet_key)}),
            self._secret("api-secret-key", SECRETS.api_secret_key, {"api-secret-key": self._password("api-secret-key", 64)}),
            self._secret("jwt-secret", SECRETS.jwt_secret, {"jwt-secret": self._password("jwt-secret", 64)}),
            self._secret("admin-password", SECRETS.admin_password, {"password": self._password("admin-password", 32)}),
        ]

    def _sso_secret(self, cfg: PlatformConfig) -> list[k8s.core.v1.Secret]:
        """The OIDC client's secret, which the API server's webserver_config.py reads from its environment."""
        if cfg.sso is None or cfg.sso_client_secret is None:
            return []
        return [self._secret("sso-client-secret", SECRETS.sso_client_secret,
                             {sso.CLIENT_SECRET_KEY: cfg.sso_client_secret.get_secret_value()})]

    def _connection_secrets(self, args: AirflowArgs) -> list[k8s.core.v1.Secret]:
        airflow = args.config.airflow
        direct = pulumi.Output.all(args.db_password, args.db_address).apply(
            lambda v: postgres_url(v[0], v[1], DB_PORT, DATABASE_NAME, "require"))
        secrets = []
        if airflow.pgbouncer.enabled:
            through_pgbouncer = args.db_password.apply(
                lambda password: postgres_url(password, f"{RELEASE}-pgbouncer.{NAMESPACE}", PGBOUNCER_PORT, PGBOUNCER_DATABASE, "disable"))
            # KEDA reads kedaConnection: straight to the DB, not through PgBouncer.
            secrets.append(self._secret("metadata", SECRETS.metadata, {"connection": through_pgbouncer, "kedaConnection": direct}))
            ini = pulumi.Output.from_input(args.db_address).apply(
                lambda host: pgbouncer_ini(host, airflow.pgbouncer.pool_size, airflow.pgbouncer.max_client_conn))
            users = args.db_password.apply(lambda password: f'"{MASTER_USERNAME}" "{password}"\n')
            secrets.append(self._secret("pgbouncer-config", SECRETS.pgbouncer_config, {"pgbouncer.ini": ini, "users.txt": users}))
            stats = args.db_password.apply(lambda password: postgres_url(password, "127.0.0.1", PGBOUNCER_PORT, "pgbouncer", "disable"))
            secrets.append(self._secret("pgbouncer-stats", SECRETS.pgbouncer_stats, {"connection": stats}))
        else:
            secrets.append(self._secret("metadata", SECRETS.metadata, {"connection": direct}))

        if args.broker_address is not None:
            broker = pulumi.Output.all(args.broker_auth_token, args.broker_address).apply(
                lambda v: elasticache_broker_url(v[0], v[1], REDIS_PORT))
        else:
            password = self._password("redis-password", 32)
            secrets.append(self._secret("redis-password", SECRETS.redis_password, {"password": password}))
            broker = password.apply(in_cluster_broker_url)
        secrets.append(self._secret("broker", SECRETS.broker, {"connection": broker}))
        return secrets
