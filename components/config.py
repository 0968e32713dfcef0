"""The typed stack config: every key, its type, its default, and the rules that tie keys together.

Data flows one way: the stack file -> `load()` -> these objects -> the components. Nothing else reads
`pulumi.Config`. Shape, types and ranges are checked by pydantic (strict: `"3"` is not an integer and
`"yes"` is not a boolean), with the field types of `config_fields`; rules that relate several keys are checked
afterwards (`config_rules`). Either way the first problem stops the run with one `ConfigError` sentence that names
the key and what is allowed, before any resource is declared.

Defaults that differ in production are declared as `None` with a `defaultText`, and resolved in one place,
`PlatformConfig._resolve_environment_defaults`.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Collection, Literal, Optional

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from components.charts import CHARTS, PinnedChart
from components.config_errors import sentence, unwrap
from components.config_fields import (LOG_RETENTION_DAYS, PERFORMANCE_INSIGHTS_RETENTION_DAYS, PRODUCTION_ENVIRONMENT_NAMES, PROJECT,
                                      REGION_KEY, RESERVED_NAMESPACES, RESERVED_TAG_KEYS, SECRET_KEYS, ConfigError, DnsName,
                                      EnvironmentName, HttpsUrlSecret, IamRoleArn, ImageReference, InstanceType, RunbookBaseUrl,
                                      SlackChannel, TagValue, chart_repository, cron, known_db_instance_class, eks_version, matching, one_of,
                                      private_ipv4_network, public_access_cidr, qualified, secret_matching, task_namespace)
from components.config_rules import check_rules, cpu_architecture, node_group_architecture

__all__ = ["PROJECT", "REGION_KEY", "RESERVED_NAMESPACES", "RESERVED_TAG_KEYS", "SECRET_KEYS", "ConfigError", "PlatformConfig",
           "cpu_architecture", "decode_stack_config", "load", "node_group_architecture", "parse", "qualified", "unwrap"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, alias_generator=to_camel, populate_by_name=True)


class NetworkConfig(_Model):
    """Where the platform runs: a new VPC (default) or an existing one."""

    vpc_cidr: Optional[Annotated[str, AfterValidator(private_ipv4_network)]] = Field(
        None, description="CIDR of the new VPC (/16 to /20, private range); each zone gets a private subnet of 1/8 of it and a public one of 1/64.",
        json_schema_extra={"defaultText": "10.0.0.0/16 (unless existingVpcId is set)"})
    nat_gateways: Optional[Literal["single", "per-zone"]] = Field(
        None, description="NAT gateways of a new VPC: one shared, or one per zone so a zone loss keeps egress.",
        json_schema_extra={"defaultText": "per-zone in production, else single"})
    existing_vpc_id: Optional[Annotated[str, matching(r"vpc-[0-9a-f]{8,17}", "must be a VPC id, like vpc-0123456789abcdef0")]] = Field(
        None, description="Use this VPC instead of creating one; then existingPrivateSubnetIds is required.")
    existing_private_subnet_ids: list[Annotated[str, matching(r"subnet-[0-9a-f]{8,17}", "must be a subnet id, like subnet-0123456789abcdef0")]] = Field(
        default_factory=list, description="With existingVpcId: one private subnet per zone, in distinct zones, routed to a NAT.")


class NodeGroupConfig(_Model):
    instance_types: list[InstanceType] = Field(description="EC2 instance types of the managed node group, all of one CPU architecture.")
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field("ON_DEMAND", description="ON_DEMAND or SPOT.")
    min_size: int = Field(ge=1, le=100, description="Minimum nodes (in production at least the zone count, so every zone has one).")
    max_size: int = Field(ge=1, le=500, description="Maximum nodes.")
    desired_size: int = Field(ge=1, le=500, description="Initial nodes, from minSize to maxSize.")
    disk_size_gib: int = Field(50, ge=20, le=16384, alias="diskSizeGiB", description="Root volume (gp3, encrypted with the cluster's KMS key).")


class SystemNodeGroupConfig(NodeGroupConfig):
    """Nodes for the Airflow control plane (scheduler, API server, DAG processor, triggerer) and add-ons."""

    instance_types: list[InstanceType] = Field(["m6i.large"], min_length=1, description="EC2 instance types of the system group.")
    min_size: int = Field(2, ge=1, le=100, description="Minimum nodes of the system group.")
    max_size: int = Field(4, ge=1, le=500, description="Maximum nodes of the system group.")
    desired_size: int = Field(2, ge=1, le=500, description="Initial nodes of the system group.")


class WorkerNodeGroupConfig(NodeGroupConfig):
    """Nodes for Celery workers and KubernetesPodOperator pods."""

    instance_types: list[InstanceType] = Field(["m6i.xlarge"], min_length=1, description="EC2 instance types of the worker group.")
    min_size: int = Field(2, ge=1, le=100, description="Minimum nodes of the worker group.")
    max_size: int = Field(10, ge=1, le=500, description="Maximum nodes of the worker group.")
    desired_size: int = Field(2, ge=1, le=500, description="Initial nodes of the worker group.")


class NodeGroupsConfig(_Model):
    system: SystemNodeGroupConfig = Field(default_factory=SystemNodeGroupConfig, description="The system node group.")
    workers: WorkerNodeGroupConfig = Field(default_factory=WorkerNodeGroupConfig, description="The worker node group.")


AddonVersion = Annotated[str, matching(r"v\d+\.\d+\.\d+-eksbuild\.\d+", "must be an EKS add-on version, like v1.19.2-eksbuild.1")]


class AddonVersionsConfig(_Model):
    """Pinned EKS add-on versions; unset means the default version EKS picks for the cluster's Kubernetes version."""

    vpc_cni: Optional[AddonVersion] = Field(None, description="vpc-cni add-on version.")
    coredns: Optional[AddonVersion] = Field(None, description="coredns add-on version.")
    kube_proxy: Optional[AddonVersion] = Field(None, description="kube-proxy add-on version.")
    ebs_csi_driver: Optional[AddonVersion] = Field(None, description="aws-ebs-csi-driver add-on version.")
    efs_csi_driver: Optional[AddonVersion] = Field(None, description="aws-efs-csi-driver add-on version (only with airflow.dagDelivery efs).")


class ClusterConfig(_Model):
    kubernetes_version: Annotated[str, AfterValidator(eks_version)] = Field(
        "1.33", description="EKS Kubernetes version, as a string.")
    endpoint_public_access_cidrs: list[Annotated[str, AfterValidator(public_access_cidr)]] = Field(
        default_factory=list, description="CIDR blocks that may reach the API endpoint from the internet; empty keeps the endpoint private. 0.0.0.0/0 is refused.")
    admin_role_arns: list[IamRoleArn] = Field(
        default_factory=list, description="IAM roles granted cluster admin through EKS access entries.")
    creator_admin: bool = Field(
        True, description="Grant the identity that creates the cluster admin access (the deploying CI needs it for the Kubernetes provider); changing it replaces the cluster.")
    log_retention_days: Annotated[int, one_of(LOG_RETENTION_DAYS, "CloudWatch Logs retention periods")] = Field(
        90, description="Retention of the control-plane log group (all five log types are on); one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653.")
    node_groups: NodeGroupsConfig = Field(default_factory=NodeGroupsConfig, description="The managed node groups.")
    addon_versions: AddonVersionsConfig = Field(default_factory=AddonVersionsConfig, description="Pinned EKS add-on versions.")


class TeamConfig(_Model):
    name: DnsName = Field(description="Team name, DNS-safe (a-z, 0-9, '-'; at most 32): the DAG prefix teams/<name>/ and the dag_id prefix.")
    owner: TagValue = Field(description="Who answers for the team's DAGs (an e-mail or a handle).")
    repository: Annotated[str, matching(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "must be a GitHub repository as owner/name, like example-org/analytics-dags")] = Field(
        description="The team's DAG repository; only its CI may assume the team's role.")
    branch: Annotated[str, matching(r"[A-Za-z0-9._/-]{1,100}", "must be a git branch name, like main")] = Field(
        "main", description="The only branch whose CI may publish (GitHub OIDC subject repo:<repository>:ref:refs/heads/<branch>).")
    slack_channel: Optional[SlackChannel] = Field(
        None, description="The team's Slack channel: alerts labelled team=<name> go there (unset: to the platform channel).")


class DagStorageConfig(_Model):
    noncurrent_version_days: int = Field(30, ge=1, le=3650, description="Days an overwritten or deleted DAG version is kept before it expires.")
    github_oidc_provider_arn: Optional[Annotated[str, matching(
        r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com",
        "must be the ARN of the account's GitHub OIDC provider (…:oidc-provider/token.actions.githubusercontent.com)")]] = Field(
        None, description="The account's existing GitHub Actions OIDC provider; unset creates it (an account holds only one).")


class DatabaseConfig(_Model):
    engine_version: Literal["14", "15", "16", "17"] = Field("16", description="PostgreSQL major version (minor versions upgrade automatically).")
    instance_class: Annotated[str, AfterValidator(known_db_instance_class)] = Field(
        "db.m7g.large", description="RDS instance class; sets max_connections, which the connection alarm is relative to.")
    allocated_storage_gib: int = Field(50, ge=20, le=65536, alias="allocatedStorageGiB", description="Initial gp3 storage.")
    max_allocated_storage_gib: int = Field(200, ge=21, le=65536, alias="maxAllocatedStorageGiB", description="Storage autoscaling ceiling, above allocatedStorageGiB.")
    backup_retention_days: Optional[int] = Field(
        None, ge=7, le=35, description="Automated backup retention (at least 14 in production).",
        json_schema_extra={"defaultText": "14 in production, else 7"})
    multi_az: Optional[bool] = Field(
        None, description="Standby in another zone (required in production).", json_schema_extra={"defaultText": "true in production, else false"})
    deletion_protection: Optional[bool] = Field(
        None, description="Deletion protection, and a final snapshot on delete (required in production).",
        json_schema_extra={"defaultText": "true in production, else false"})
    performance_insights_retention_days: Annotated[int, one_of(PERFORMANCE_INSIGHTS_RETENTION_DAYS, "Performance Insights retention periods")] = Field(
        7, description="Performance Insights retention: 7 (free), a multiple of 31 up to 713, or 731.")
    monitoring_interval_seconds: Literal[1, 5, 10, 15, 30, 60] = Field(60, description="Enhanced monitoring interval.")


class BrokerConfig(_Model):
    mode: Optional[Literal["elasticache", "in-cluster"]] = Field(
        None, description="elasticache: a managed replication group that survives a zone loss; in-cluster: the Airflow chart's Redis (not allowed in production).",
        json_schema_extra={"defaultText": "elasticache in production, else in-cluster"})
    engine: Literal["valkey", "redis"] = Field("valkey", description="ElastiCache engine (both speak the Redis protocol Celery uses).")
    engine_version: Annotated[str, matching(r"\d+\.\d+", "must be a major.minor engine version, like 8.0")] = Field(
        "8.0", description="ElastiCache engine version.")
    node_type: Annotated[str, matching(r"cache\.[a-z0-9]+\.[a-z0-9]+", "must be an ElastiCache node type, like cache.t4g.small")] = Field(
        "cache.t4g.small", description="ElastiCache node type.")
    nodes: int = Field(2, ge=2, le=6, description="Nodes of the replication group (a primary and replicas, spread over the zones).")


class AlarmsConfig(_Model):
    cpu_percent: int = Field(80, ge=1, le=100, description="DB CPU utilisation that raises an alarm.")
    free_storage_gib: int = Field(5, ge=1, le=65536, alias="freeStorageGiB", description="DB free storage below which an alarm is raised (below allocatedStorageGiB).")
    connections_percent: int = Field(80, ge=1, le=100, description="DB connections, as a percentage of the class's max_connections, that raise an alarm.")
    freeable_memory_mib: int = Field(256, ge=16, le=1_048_576, alias="freeableMemoryMiB", description="DB freeable memory below which an alarm is raised (below the class's memory).")
    read_latency_ms: int = Field(20, ge=1, le=10_000, description="DB read latency that raises an alarm.")
    write_latency_ms: int = Field(20, ge=1, le=10_000, description="DB write latency that raises an alarm.")
    period_seconds: Literal[60, 300] = Field(60, description="Period of each alarm's datapoints.")
    evaluation_periods: int = Field(5, ge=1, le=60, description="Consecutive breaching periods before an alarm fires.")
    notifications_enabled: bool = Field(True, description="Whether the alarms notify the topic; false keeps a test stack's alarms quiet.")
    email_subscriptions: list[Annotated[str, matching(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", "must be an e-mail address")]] = Field(
        default_factory=list, description="E-mail addresses subscribed to the alarm topic (each confirms by mail). "
                                          "For a paging service set the secret alarmWebhookUrl.")


class MonitoringConfig(_Model):
    """Metrics: the OTEL collector Airflow sends to, and kube-prometheus-stack."""

    prometheus_retention_days: int = Field(15, ge=1, le=365, description="Days Prometheus keeps samples.")
    prometheus_storage_gib: int = Field(50, ge=10, le=16_384, alias="prometheusStorageGiB", description="Prometheus volume (gp3, encrypted).")
    prometheus_replicas: Optional[int] = Field(None, ge=1, le=3, description="Prometheus replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    alertmanager_replicas: Optional[int] = Field(None, ge=1, le=5, description="Alertmanager replicas (they gossip to deduplicate).",
                                                 json_schema_extra={"defaultText": "2 in production, else 1"})
    collector_replicas: Optional[int] = Field(None, ge=1, le=10, description="OTEL collector replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    metrics_interval_seconds: int = Field(30, ge=5, le=300, description="How often Airflow exports its metrics (otel_interval_milliseconds).")


class AlertingConfig(_Model):
    """Where alerts go, and the thresholds of the Airflow alert rules."""

    critical_receiver: Literal["pagerduty", "opsgenie"] = Field(
        "pagerduty", description="Who pages for critical alerts (with the secret pagerDutyRoutingKey or opsgenieApiKey).")
    platform_slack_channel: SlackChannel = Field("#data-platform-alerts", description="The platform team's channel: warnings, and a copy of criticals.")
    scheduler_loop_seconds: int = Field(30, ge=1, le=3600, description="A scheduler loop longer than this (for 10 minutes) raises AirflowSchedulerLoopSlow.")
    queued_task_sla_minutes: int = Field(15, ge=1, le=1440, description="A task queued longer than this raises AirflowTaskQueuedTooLong.")
    dag_parse_seconds: int = Field(120, ge=1, le=3600, description="A DAG not re-parsed for longer than this (for 5 minutes) raises AirflowDagParseSlow; "
                                                                                "files are re-parsed every 30 s when parsing keeps up.")
    team_task_failures_per_hour: int = Field(10, ge=1, le=100_000, description="Failed task instances of one team in an hour that raise AirflowTeamTaskFailures.")
    watchdog_url: Optional[Annotated[str, matching(r"https://[\w.-]+(:\d+)?(/\S*)?", "must be an https:// URL")]] = Field(
        None, description="Dead man's switch: the always-firing Watchdog alert is posted here every minute, so silence means alerting is broken. "
                          "Not a secret (Alertmanager cannot read a URL from a file before 0.26); put a credential in the secret watchdogToken.")
    runbook_base_url: RunbookBaseUrl = Field(
        "docs/runbooks", description="Where the runbook pages of docs/runbooks/ are browsable (your fork's docs URL); "
                                     "each alert's runbook_url is <this>/<AlertName>.md. When set, an https:// URL "
                                     "without a trailing /; unset, the repository-relative folder.")




class ImageConfig(_Model):
    repository: Annotated[str, matching(r"[a-z0-9.\-/:]+", "must be an image repository, like apache/airflow")] = Field(
        "apache/airflow", description="Airflow image repository (mirror it into ECR for production).")
    tag: Annotated[str, matching(r"3\.\d+\.\d+(-python3\.\d+)?", "must be an Airflow 3 image tag, like 3.1.7 or 3.1.7-python3.12")] = Field(
        "3.1.7", description="Airflow image tag; its version is also the chart's airflowVersion.")

    @property
    def airflow_version(self) -> str:
        return self.tag.split("-")[0]


class WorkersConfig(_Model):
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


class ReplicasConfig(_Model):
    """Replicas of the Airflow control plane (at least 2 of scheduler and API server in production)."""

    scheduler: Optional[int] = Field(None, ge=1, le=10, description="Scheduler replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    api_server: Optional[int] = Field(None, ge=1, le=20, description="API server replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    triggerer: Optional[int] = Field(None, ge=1, le=10, description="Triggerer replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    dag_processor: Optional[int] = Field(None, ge=1, le=10, description="DAG processor replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})


class PgBouncerConfig(_Model):
    enabled: Optional[bool] = Field(None, description="Put the chart's PgBouncer between Airflow and the DB (KEDA still connects directly).",
                                    json_schema_extra={"defaultText": "true in production, else false"})
    replicas: Optional[int] = Field(None, ge=1, le=10, description="PgBouncer replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    max_client_conn: int = Field(1000, ge=10, le=100_000, description="Client connections one PgBouncer accepts.")
    pool_size: int = Field(20, ge=1, le=1000, description="Server connections one PgBouncer opens to the DB.")


class DagSyncConfig(_Model):
    image: ImageReference = Field(description="objinsync image, pinned (mirror it into your registry: the upstream project publishes no reliable tags).")
    interval_seconds: int = Field(30, ge=5, le=300, description="Seconds between the sidecar's syncs (new DAGs appear within this).")


class TaskPodsConfig(_Model):
    """The namespace where KubernetesPodOperator tasks run."""

    namespace: Annotated[DnsName, AfterValidator(task_namespace)] = Field(
        "airflow-tasks", description="Namespace of KubernetesPodOperator pods (not airflow, keda or a Kubernetes namespace).")
    quota_cpu: int = Field(32, ge=1, le=10_000, description="ResourceQuota: CPU cores all task pods may request together.")
    quota_memory_gib: int = Field(128, ge=1, le=100_000, alias="quotaMemoryGiB", description="ResourceQuota: memory all task pods may request together.")
    quota_pods: int = Field(100, ge=1, le=10_000, description="ResourceQuota: task pods at once.")
    default_cpu_millicores: int = Field(500, ge=10, le=64_000, description="LimitRange: CPU request of a container that sets none.")
    default_memory_mib: int = Field(512, ge=16, le=1_048_576, alias="defaultMemoryMiB", description="LimitRange: memory request and limit of a container that sets none.")


class DatabaseCleanupConfig(_Model):
    schedule: Annotated[str, AfterValidator(cron)] = Field("0 3 * * 0", description="When the databaseCleanup CronJob runs airflow db clean.")
    retention_days: int = Field(90, ge=1, le=3650, description="Rows older than this are deleted (and first archived unless skipArchive).")
    skip_archive: bool = Field(True, description="airflow db clean --skip-archive: purged rows are deleted, not copied into _airflow_deleted__* "
                                                 "archive tables (which keep the DB growing).")


class AirflowConfig(_Model):
    image: ImageConfig = Field(default_factory=ImageConfig, description="The Airflow image.")
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


ChartRepository = Annotated[str, AfterValidator(chart_repository)]


def _repository(chart: str, alias: str | None = None) -> Any:
    official = CHARTS[chart].repository
    return Field(official, alias=alias, description=f"Where {chart} {CHARTS[chart].version} is installed (and `make charts` pulls it) from: "
                                                    "a Helm repository serving the official archive, or an oci:// registry path holding it.")


class ChartRepositoriesConfig(_Model):
    """Where each chart comes from: its official repository by default, or your mirror (Artifactory, Nexus, ECR)."""

    airflow: ChartRepository = _repository("airflow")
    keda: ChartRepository = _repository("keda")
    opentelemetry_collector: ChartRepository = _repository("opentelemetry-collector", "opentelemetry-collector")
    kube_prometheus_stack: ChartRepository = _repository("kube-prometheus-stack", "kube-prometheus-stack")

    def of(self, chart: PinnedChart) -> str:
        return getattr(self, chart.name.replace("-", "_"))


class PlatformConfig(_Model):
    region: Annotated[str, matching(r"[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d", "must be an AWS region, like eu-west-1")] = Field(
        alias=REGION_KEY, description="AWS region (the aws provider's own key).")
    environment: EnvironmentName = Field(description="Environment name, DNS-safe (a-z, 0-9, '-'; at most 20): resource names start airflow-<environment>, and it is the environment tag.")
    production: Optional[bool] = Field(
        None, description="Whether production rules apply (≥3 zones, Multi-AZ, protection, per-zone NAT, ElastiCache broker).",
        json_schema_extra={"defaultText": "true when environment is prod or production"})
    owner: TagValue = Field(description="The owning platform team: the owner tag of every resource.")
    zones: int = Field(3, ge=2, le=6, description="Availability zones to spread over (at least 3 in production).")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="The VPC.")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="The EKS cluster.")
    teams: list[TeamConfig] = Field(default_factory=list, max_length=200, description="Product teams that publish DAGs.")
    dag_storage: DagStorageConfig = Field(default_factory=DagStorageConfig, description="The DAG bucket.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="The metadata DB.")
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="The Celery broker.")
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig, description="Metadata DB alarm thresholds.")
    airflow: AirflowConfig = Field(description="Airflow, its workers and its chart release.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Metrics collection and storage.")
    alerting: AlertingConfig = Field(default_factory=AlertingConfig, description="Alert rules and routes.")
    chart_repositories: ChartRepositoriesConfig = Field(default_factory=ChartRepositoriesConfig,
                                                        description="Where each Helm chart is installed from (official repositories unless set).")
    slack_bot_token: Optional[Annotated[SecretStr, secret_matching(r"xox[bp]-[A-Za-z0-9-]+", "must be a Slack bot token (xoxb-…)")]] = Field(
        None, description="Secret. Slack bot token Alertmanager posts with (to the platform and team channels). Unset: no Slack alerts.")
    pager_duty_routing_key: Optional[Annotated[SecretStr, secret_matching(r"[A-Za-z0-9]{32}", "must be a 32-character PagerDuty Events v2 routing key")]] = Field(
        None, description="Secret. PagerDuty Events v2 routing key for critical alerts (with alerting.criticalReceiver pagerduty).")
    opsgenie_api_key: Optional[Annotated[SecretStr, secret_matching(r"[0-9a-f-]{36}", "must be an Opsgenie API key (a UUID)")]] = Field(
        None, description="Secret. Opsgenie API key for critical alerts (with alerting.criticalReceiver opsgenie).")
    watchdog_token: Optional[Annotated[SecretStr, secret_matching(r"\S{8,512}", "must be a token of 8 to 512 characters without spaces")]] = Field(
        None, description="Secret. Bearer token sent with the Watchdog heartbeat to alerting.watchdogUrl, if that service needs one.")
    alarm_webhook_url: Optional[HttpsUrlSecret] = Field(
        None, description="Secret. An https endpoint subscribed to the DB alarm topic, e.g. PagerDuty's CloudWatch integration URL.")
    slack_webhook_url: Optional[Annotated[SecretStr, secret_matching(
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+", "must be a Slack incoming-webhook URL (https://hooks.slack.com/services/<ids>)")]] = Field(
        None, description="Secret. The company Slack incoming webhook, stored as the Airflow connection platform_slack in Secrets Manager; "
                          "set it with `pulumi config set --secret airflow-platform:slackWebhookUrl <url>`. Unset: no Slack connection.")
    tags: dict[Annotated[str, matching(r"(?!aws:)[\w.:/=+\-@ ]{1,128}", "must be a tag key of 1 to 128 characters not starting with aws:")], TagValue] = Field(
        default_factory=dict, description="Extra tags on every resource (environment, owner and managed-by are set by the program).")
    protect_stateful_resources: Optional[bool] = Field(
        None, description="protect=True on the DB, the DAG bucket and the KMS keys (required in production).",
        json_schema_extra={"defaultText": "true in production, else false"})

    @model_validator(mode="after")
    def _resolve_environment_defaults(self) -> "PlatformConfig":
        if self.production is None:
            self.production = self.environment in PRODUCTION_ENVIRONMENT_NAMES
        prod = self.production
        network = self.network
        if network.existing_vpc_id is None and network.vpc_cidr is None:
            network.vpc_cidr = "10.0.0.0/16"
        if network.nat_gateways is None:
            network.nat_gateways = "per-zone" if prod else "single"
        db = self.database
        if db.backup_retention_days is None:
            db.backup_retention_days = 14 if prod else 7
        if db.multi_az is None:
            db.multi_az = prod
        if db.deletion_protection is None:
            db.deletion_protection = prod
        if self.broker.mode is None:
            self.broker.mode = "elasticache" if prod else "in-cluster"
        if self.protect_stateful_resources is None:
            self.protect_stateful_resources = prod
        airflow = self.airflow
        two_in_production = 2 if prod else 1
        for component in ("scheduler", "api_server", "triggerer", "dag_processor"):
            if getattr(airflow.replicas, component) is None:
                setattr(airflow.replicas, component, two_in_production)
        if airflow.workers.min_replicas is None:
            airflow.workers.min_replicas = two_in_production
        if airflow.workers.cooldown_seconds is None:
            airflow.workers.cooldown_seconds = airflow.worker_grace_seconds + 60
        if airflow.pgbouncer.enabled is None:
            airflow.pgbouncer.enabled = prod
        if airflow.pgbouncer.replicas is None:
            airflow.pgbouncer.replicas = two_in_production
        monitoring = self.monitoring
        for key in ("prometheus_replicas", "alertmanager_replicas", "collector_replicas"):
            if getattr(monitoring, key) is None:
                setattr(monitoring, key, two_in_production)
        return self

    @property
    def name(self) -> str:
        """The prefix of every resource name of this environment."""
        return f"airflow-{self.environment}"

    @property
    def default_tags(self) -> dict[str, str]:
        return {**self.tags, "environment": self.environment, "owner": self.owner, "managed-by": "pulumi"}


# --- entry points --------------------------------------------------------------------------------

def parse(raw: dict[str, Any]) -> PlatformConfig:
    """Validate a decoded stack config (keys without the project prefix, plus `aws:region`)."""
    try:
        cfg = PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        raise sentence(exc.errors()[0], PlatformConfig) from None
    check_rules(cfg)
    return cfg


def _decode(key: str, text: str) -> Any:
    """Pulumi hands every value over as a string; objects, lists, numbers and booleans arrive as JSON."""
    field = PlatformConfig.model_fields.get(key) or next(
        (f for f in PlatformConfig.model_fields.values() if f.alias == key), None)
    if field is not None and unwrap(field.annotation) is str:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def decode_stack_config(values: dict[str, str], secret_keys: Collection[str] = ()) -> dict[str, Any]:
    """Turn the engine's config map (`airflow-platform:zones` -> `"3"`) into `parse()`'s input, refusing foreign keys."""
    raw: dict[str, Any] = {}
    for full_key, text in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT and key in SECRET_KEYS:
            if full_key not in secret_keys:
                raise ConfigError(key, f"must be a secret: set it with pulumi config set --secret {full_key} <value>")
            raw[key] = text
        elif namespace == PROJECT:
            raw[key] = _decode(key, text)
        elif full_key == REGION_KEY:
            raw[REGION_KEY] = text
        elif namespace == "aws":
            raise ConfigError(full_key, f"is not read by this program: the only aws key it uses is {REGION_KEY} (give credentials through the environment, for example AWS_PROFILE)")
    return raw


def load() -> PlatformConfig:
    """Read and validate the running stack's config."""
    values = pulumi.runtime.get_config_env()
    return parse(decode_stack_config(values, pulumi.runtime.get_config_secret_keys_env()))
