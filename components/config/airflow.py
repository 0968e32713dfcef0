"""The `airflow` key: Airflow, its workers and its chart release."""

from __future__ import annotations

import math
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field

from components.config.fields import DnsName, ImageReference, cron, matching, task_namespace
from components.config.model import Model


class WorkersConfig(Model):
    """Celery workers: size, recycling and KEDA autoscaling."""

    concurrency: int = Field(8, ge=1, le=128, description="Celery worker_concurrency: task slots per worker (KEDA divides by it).")
    max_tasks_per_child: int = Field(100, ge=1, le=100_000, description="Celery worker_max_tasks_per_child: a pool process is replaced after this many tasks.")
    max_memory_per_child_kib: int = Field(393_216, ge=65_536, le=67_108_864, alias="maxMemoryPerChildKiB",
                                          description="Celery worker_max_memory_per_child (KiB), the supervisor cap: a pool process (the task supervisor, "
                                                      "not the task) above it is replaced after its task.")
    task_memory_mib: int = Field(1024, ge=64, le=524_288, alias="taskMemoryMiB",
                                 description="Memory budget of one task process (the supervisor's fork), which Celery does not watch: "
                                             "heavier tasks belong in a KubernetesPodOperator pod.")
    cpu_millicores: int = Field(2000, ge=250, le=64_000, description="CPU request of a worker pod.")
    memory_gib: int = Field(12, ge=1, le=512, alias="memoryGiB",
                            description="Memory request and limit of a worker pod: at least concurrency × (maxMemoryPerChildKiB + taskMemoryMiB) "
                                        "+ 512 MiB for the worker's main process, as the kernel OOM-kills its largest process at the limit.")
    min_replicas: Optional[int] = Field(None, ge=0, le=500, description="KEDA minReplicaCount: workers kept when idle.",
                                        json_schema_extra={"defaultText": "2 in production, else 1"})
    max_replicas: int = Field(10, ge=1, le=500, description="KEDA maxReplicaCount (× concurrency at most core parallelism).")
    polling_interval_seconds: int = Field(5, ge=1, le=300, description="KEDA pollingInterval.")
    cooldown_seconds: Optional[int] = Field(None, ge=1, le=86_400, description="KEDA cooldownPeriod, at least the workers' termination grace period.",
                                            json_schema_extra={"defaultText": "termination grace period + 60"})


class ReplicasConfig(Model):
    """Replicas of the Airflow control plane (at least 2 of scheduler and API server in production)."""

    scheduler: Optional[int] = Field(None, ge=1, le=10, description="Scheduler replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    api_server: Optional[int] = Field(None, ge=1, le=20, description="API server replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    triggerer: Optional[int] = Field(None, ge=1, le=10, description="Triggerer replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    dag_processor: int = Field(1, ge=1, le=10, description="DAG processor replicas: 1, in production too (two DAG processors of one DAG "
                                                           "folder race to insert each new DAG, and the loser exits).")


class PgBouncerConfig(Model):
    enabled: Optional[bool] = Field(None, description="Put the chart's PgBouncer between Airflow and the DB (KEDA still connects directly).",
                                    json_schema_extra={"defaultText": "true in production, else false"})
    replicas: Optional[int] = Field(None, ge=1, le=10, description="PgBouncer replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    max_client_conn: int = Field(1000, ge=10, le=100_000, description="Client connections one PgBouncer accepts.")
    pool_size: int = Field(20, ge=1, le=1000, description="Server connections one PgBouncer opens to the DB.")


class DagSyncConfig(Model):
    image: ImageReference = Field(description="objinsync image, pinned (mirror it into your registry: the upstream project publishes no reliable tags).")
    interval_seconds: int = Field(30, ge=5, le=300, description="Seconds between the sidecar's syncs (new DAGs appear within this).")


class TaskPodsConfig(Model):
    """The namespace where KubernetesPodOperator tasks run."""

    namespace: Annotated[DnsName, AfterValidator(task_namespace)] = Field(
        "airflow-tasks", description="Namespace of KubernetesPodOperator pods (not airflow, keda or a Kubernetes namespace).")
    quota_cpu: int = Field(32, ge=1, le=10_000, description="ResourceQuota: CPU cores all task pods may request together.")
    quota_memory_gib: int = Field(128, ge=1, le=100_000, alias="quotaMemoryGiB", description="ResourceQuota: memory all task pods may request together.")
    quota_pods: int = Field(100, ge=1, le=10_000, description="ResourceQuota: task pods at once.")
    default_cpu_millicores: int = Field(500, ge=10, le=64_000, description="LimitRange: CPU request of a container that sets none.")
    default_memory_mib: int = Field(512, ge=16, le=1_048_576, alias="defaultMemoryMiB", description="LimitRange: memory request and limit of a container that sets none.")


class DatabaseCleanupConfig(Model):
    schedule: Annotated[str, AfterValidator(cron)] = Field("0 3 * * 0", description="When the databaseCleanup CronJob runs airflow db clean.")
    retention_days: int = Field(90, ge=1, le=3650, description="Rows older than this are deleted (and first archived unless skipArchive).")
    skip_archive: bool = Field(True, description="airflow db clean --skip-archive: purged rows are deleted, not copied into _airflow_deleted__* "
                                                 "archive tables (which keep the DB growing).")


class AirflowConfig(Model):
    executor: Literal["CeleryExecutor", "CeleryExecutor,KubernetesExecutor"] = Field(
        "CeleryExecutor", description="CeleryExecutor, or CeleryExecutor,KubernetesExecutor to also run chosen tasks as pods.")
    parallelism: int = Field(128, ge=1, le=100_000, description="core.parallelism: task instances one scheduler runs at once.")
    longest_task_minutes: int = Field(60, ge=1, le=1440, description="The longest task's run time; workers get 1.5 × this to finish on shutdown.")
    workers: WorkersConfig = Field(default_factory=WorkersConfig, description="Celery workers.")
    replicas: ReplicasConfig = Field(default_factory=ReplicasConfig, description="Control-plane replicas.")
    api_server_workers: int = Field(4, ge=1, le=64, description="API server worker processes per replica ([api] workers).")
    sql_alchemy_pool_size: int = Field(5, ge=1, le=100, description="[database] sql_alchemy_pool_size of each Airflow process.")
    sql_alchemy_max_overflow: int = Field(10, ge=0, le=100, description="[database] sql_alchemy_max_overflow of each Airflow process.")
    pgbouncer: PgBouncerConfig = Field(default_factory=PgBouncerConfig, description="PgBouncer.")
    dag_delivery: Literal["objinsync", "efs"] = Field(
        "objinsync", description="objinsync: an init container and a sidecar per pod; efs: one objinsync writer into an EFS volume every pod mounts.")
    dag_sync: DagSyncConfig = Field(description="The objinsync containers.")
    task_pods: TaskPodsConfig = Field(default_factory=TaskPodsConfig, description="KubernetesPodOperator namespace.")
    database_cleanup: DatabaseCleanupConfig = Field(default_factory=DatabaseCleanupConfig, description="The chart's databaseCleanup CronJob.")
    log_retention_days: int = Field(30, ge=1, le=3650, description="Days task logs are kept under the DAG bucket's logs/ prefix.")
    secrets_prefix: Annotated[str, matching(r"[a-z0-9][a-z0-9/_-]{0,40}", "must be a Secrets Manager name prefix, like airflow")] = Field(
        "airflow", description="Connections are read from <prefix>/connections/*, variables from <prefix>/variables/*.")

    @property
    def worker_grace_seconds(self) -> int:
        """1.5 × the longest task, so a worker that is asked to stop lets its running tasks finish."""
        return math.ceil(self.longest_task_minutes * 60 * 3 / 2)
