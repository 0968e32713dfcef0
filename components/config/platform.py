"""The whole stack config: every top-level key, and the defaults that differ in production, resolved in one place."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field, SecretStr, model_validator

from components.config.airflow import AirflowConfig
from components.config.alarms import AlarmsConfig
from components.config.alerting import AlertingConfig
from components.config.broker import BrokerConfig
from components.config.chart_repositories import ChartRepositoriesConfig
from components.config.cluster import ClusterConfig
from components.config.dag_storage import DagStorageConfig
from components.config.entry import EntryConfig
from components.config.images import ImagesConfig
from components.config.database import DatabaseConfig
from components.config.fields import (PRODUCTION_ENVIRONMENT_NAMES, REGION_KEY, EnvironmentName, HttpsUrlSecret, TagValue, matching,
                                      secret_matching)
from components.config.karpenter import KarpenterConfig
from components.config.model import Model
from components.config.monitoring import MonitoringConfig
from components.config.network import NetworkConfig
from components.config.sso import SsoConfig
from components.config.teams import TeamConfig


class PlatformConfig(Model):
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
    karpenter: KarpenterConfig = Field(default_factory=KarpenterConfig, description="The nodes of the workers and the task pods.")
    teams: list[TeamConfig] = Field(default_factory=list, max_length=200, description="Product teams that publish DAGs.")
    dag_storage: DagStorageConfig = Field(default_factory=DagStorageConfig, description="The DAG bucket.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="The metadata DB.")
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="The Celery broker.")
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig, description="Metadata DB alarm thresholds.")
    airflow: AirflowConfig = Field(description="Airflow, its workers and its chart release.")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="Metrics collection and storage.")
    alerting: AlertingConfig = Field(default_factory=AlertingConfig, description="Alert rules and routes.")
    entry: Optional[EntryConfig] = Field(
        None, description="The private HTTPS entry to the Airflow UI/API and Grafana (required in production). Unset: no load balancer; "
                          "the UIs are reachable only through kubectl port-forward.")
    sso: Optional[SsoConfig] = Field(
        None, description="Single sign-on through the company's OIDC provider for Airflow and Grafana (required in production; needs entry). "
                          "Unset: only the generated break-glass admin logins.")
    images: ImagesConfig = Field(default_factory=ImagesConfig,
                                 description="Changes to the pinned images (docs/images.md lists them): a mirror, or another tag with its digest.")
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
    sso_client_secret: Optional[Annotated[SecretStr, secret_matching(r"[\x21-\x7e]{1,512}", "must be 1 to 512 printable characters without spaces")]] = Field(
        None, description="Secret. The OIDC client's secret (required with sso), set with `pulumi config set --secret airflow-platform:ssoClientSecret "
                          "<secret>`; Airflow and Grafana read it from Kubernetes Secrets, never from values or ConfigMaps.")
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
        if network.flow_log_retention_days is None:
            network.flow_log_retention_days = 90 if prod else 14
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
        for component in ("scheduler", "api_server", "triggerer"):
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
