"""Alert rules and Alertmanager routes, built from the typed config (pure functions, no Pulumi).

The rules use the names Airflow's metrics get on the OTEL path (OTLP -> collector -> its Prometheus exporter, the
translation of tools/otlp_prometheus.py): `airflow_<stat with . and - as _>`, counters with `_total`, timers as gauges in
milliseconds. Every Airflow process exports under its own `instance` (process_identity.py), so the rules sum or count
over processes. Task failures, queue waits and DAG parse staleness come from the metadata DB (task_metrics_exporter.py
says why Airflow's own metrics cannot serve). Pods and deployments come from kube-state-metrics, nodes from Karpenter's
own metrics (the airflow.nodes group, node_alerts.py). Every rule, and every route, is exercised by promtool and amtool in
the tests, and the end-to-end suite shows each Airflow rule firing on what real Airflow sent.

Alertmanager reads every credential from a file of the Secret mounted at RECEIVER_SECRETS_DIR: the config
itself holds none, so it can sit in the chart's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config import PlatformConfig
from components.names import AIRFLOW_NAMESPACE, SERVICE_ACCOUNTS
from components.task_metrics_exporter import FAILED_TASKS, HEARTBEAT, OLDEST_QUEUED, PARSE_AGE

RULE_LABELS = {"release": "kube-prometheus-stack"}  # what the stack's Prometheus selects PrometheusRules by
RECEIVER_SECRET = "alertmanager-receivers"
RECEIVER_SECRETS_DIR = f"/etc/alertmanager/secrets/{RECEIVER_SECRET}"
SLACK_API = "https://slack.com/api/chat.postMessage"
# The Secret's keys, one per credential.
SECRET_FILES = {"slack_bot_token": "slack-bot-token", "pager_duty_routing_key": "pagerduty-routing-key",
                "opsgenie_api_key": "opsgenie-api-key", "watchdog_token": "watchdog-token"}
WORKER_DEPLOYMENT = SERVICE_ACCOUNTS["workers"]  # the chart names the worker Deployment like its account
# The objinsync containers of the Airflow pods (see airflow_values.SyncTarget).
SYNC_CONTAINERS = "dags-sync|shared-sync"
SYNC_INIT_CONTAINERS = "dags-sync-init|shared-sync-init"
# The heartbeating components: replicas attribute -> (alert stem, stack key, name in the heartbeat metric, `component`
# label, name in prose).
HEARTBEATS = {"scheduler": ("Scheduler", "scheduler", "scheduler", "scheduler", "scheduler"),
              "triggerer": ("Triggerer", "triggerer", "triggerer", "triggerer", "triggerer"),
              "dag_processor": ("DagProcessor", "dagProcessor", "dag_processor", "dag-processor", "DAG processor")}


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    duration: str
    severity: str
    component: str
    summary: str
    description: str
    threshold_key: str = ""  # the stack key its threshold comes from, if any (for docs/alerts.md)

    def rule(self, runbook_base_url: str) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": self.duration,
                "labels": {"severity": self.severity, "component": self.component, "namespace": AIRFLOW_NAMESPACE},
                "annotations": {"summary": self.summary, "description": self.description,
                                "runbook_url": f"{runbook_base_url}/{self.name}.md"}}


def _heartbeat_missing(job: str) -> str:
    # After the collector forgets a silent series (5 minutes) the rate is empty, hence `or vector(0)`.
    return f"(sum(rate(airflow_{job}_heartbeat_total[5m])) or vector(0)) == 0"


def _heartbeating(job: str) -> str:
    """How many processes heartbeat: each exports under its own instance, and a stopped one's series stays flat."""
    return f"(count(sum by (instance) (rate(airflow_{job}_heartbeat_total[5m])) > 0) or vector(0))"


def _replicas_missing(cfg: PlatformConfig) -> list[Alert]:
    """Beside "none heartbeats": fewer heartbeat than the stack runs (only meaningful with more than one)."""
    result = []
    for attribute, (stem, key, job, component, title) in HEARTBEATS.items():
        replicas = getattr(cfg.airflow.replicas, attribute)
        if replicas > 1:
            result.append(Alert(
                f"Airflow{stem}ReplicasMissing", f"{_heartbeating(job)} < {replicas}", "5m", "warning", component,
                f"Fewer Airflow {title}s heartbeat than the stack runs",
                f"Only {{{{ $value }}}} of {replicas} {title}s have heartbeated in the last 5 minutes: the platform runs with less "
                "redundancy than configured.", f"airflow.replicas.{key}"))
    return result


def _available_workers() -> str:
    return (f'max(kube_deployment_status_replicas_available{{namespace="{AIRFLOW_NAMESPACE}", deployment="{WORKER_DEPLOYMENT}"}})'
            " or on() vector(0)")


def alerts(cfg: PlatformConfig) -> dict[str, list[Alert]]:
    """The Airflow alerts by rule group."""
    thresholds = cfg.alerting
    sla = thresholds.queued_task_sla_minutes
    minimum = cfg.airflow.workers.min_replicas
    health = [
        Alert("AirflowSchedulerDown", _heartbeat_missing("scheduler"), "5m", "critical", "scheduler",
              "No Airflow scheduler is heartbeating", "No scheduler heartbeat for 5 minutes: nothing is being scheduled."),
        Alert("AirflowTriggererDown", _heartbeat_missing("triggerer"), "5m", "critical", "triggerer",
              "No Airflow triggerer is heartbeating", "No triggerer heartbeat for 5 minutes: deferred tasks will not resume."),
        Alert("AirflowDagProcessorDown", _heartbeat_missing("dag_processor"), "5m", "critical", "dag-processor",
              "No Airflow DAG processor is heartbeating", "No DAG processor heartbeat for 5 minutes: DAG changes are not picked up."),
        *_replicas_missing(cfg),
        Alert("AirflowSchedulerLoopSlow", f"max(airflow_scheduler_scheduler_loop_duration) > {thresholds.scheduler_loop_seconds * 1000}",
              "10m", "warning", "scheduler", "The scheduler loop is slow",
              f"A scheduler loop has taken over {thresholds.scheduler_loop_seconds} s for 10 minutes ({{{{ $value | humanize }}}} ms).",
              "alerting.schedulerLoopSeconds"),
    ]
    capacity = [
        # Queued in the DB, not the executor's `queued_tasks`: that counts only what the scheduler has yet to send to the
        # broker, and a task leaves it once in Redis, whether a worker takes it or not (the end-to-end suite shows it).
        Alert("AirflowNoCeleryWorker",
              f'max({OLDEST_QUEUED}{{executor="CeleryExecutor"}}) > 0 and on() ({_available_workers()}) == 0',
              "5m", "critical", "workers", "Tasks are queued and no Celery worker is available",
              "Celery tasks have been queued for 5 minutes while no worker is available: KEDA or the worker nodes cannot bring one up."),
        # The age of each DAG's oldest queued task, read from the DB: it grows while the task waits, drained or not.
        Alert("AirflowTaskQueuedTooLong", f"max by (dag_id) ({OLDEST_QUEUED}) > {sla * 60}",
              "0m", "warning", "workers", "Tasks wait in the queue longer than the SLA",
              f"A task of DAG {{{{ $labels.dag_id }}}} has waited in the queue for over {sla} minutes "
              "({{ $value | humanizeDuration }}): the workers do not keep up, or no worker serves its queue.",
              "alerting.queuedTaskSlaMinutes"),
    ]
    if minimum > 0:
        capacity.append(Alert(
            "AirflowWorkersBelowMinimum", f"({_available_workers()}) < {minimum}", "15m", "warning", "workers",
            "Fewer Celery workers than the configured minimum",
            f"Fewer than {minimum} workers have been available for 15 minutes.", "airflow.workers.minReplicas"))
    dags = [
        # Airflow 3.1's total_parse_time times only the queueing of the files; the DB says how stale the stalest DAG is.
        Alert("AirflowDagParseSlow", f"max({PARSE_AGE}) > {thresholds.dag_parse_seconds}",
              "5m", "warning", "dag-processor", "DAG files are parsed late",
              f"A DAG has not been re-parsed for over {thresholds.dag_parse_seconds} s ({{{{ $value | humanizeDuration }}}}): "
              "changes to DAGs are picked up late; look for a file that is slow to import or times out.",
              "alerting.dagParseSeconds"),
        Alert("AirflowDagImportErrors", "max(airflow_dag_processing_import_errors) > 0", "10m", "warning", "dag-processor",
              "DAG files fail to import", "{{ $value }} DAG files have failed to import for 10 minutes."),
        # objinsync exits on any sync error: one restart can be a passing S3 hiccup, two in 15 minutes or a crash loop is not.
        # In the DAG readers its daemons are native sidecars, which kube-state-metrics counts among the init containers; the
        # EFS writer runs it as an ordinary container.
        Alert("AirflowDagSyncFailing",
              f'sum by (pod) (changes(kube_pod_init_container_status_restarts_total{{namespace="{AIRFLOW_NAMESPACE}", container=~"{SYNC_CONTAINERS}"}}[15m])) >= 2'
              f' or sum by (pod) (changes(kube_pod_container_status_restarts_total{{namespace="{AIRFLOW_NAMESPACE}", container=~"{SYNC_CONTAINERS}"}}[15m])) >= 2'
              f' or sum by (pod) (kube_pod_init_container_status_waiting_reason{{namespace="{AIRFLOW_NAMESPACE}", container=~"{SYNC_CONTAINERS}|{SYNC_INIT_CONTAINERS}", reason="CrashLoopBackOff"}}) > 0'
              f' or sum by (pod) (kube_pod_container_status_waiting_reason{{namespace="{AIRFLOW_NAMESPACE}", container=~"{SYNC_CONTAINERS}", reason="CrashLoopBackOff"}}) > 0',
              "5m", "warning", "dag-sync", "objinsync cannot sync DAGs",
              "objinsync in {{ $labels.pod }} keeps failing (it exits on any sync error): that pod's DAGs are going stale."),
    ]
    teams = [
        Alert("AirflowTeamTaskFailures", f"max by (team) ({FAILED_TASKS}) > {thresholds.team_task_failures_per_hour}",
              "0m", "warning", "tasks", "A team's tasks are failing",
              f"Over {thresholds.team_task_failures_per_hour} task instances of team {{{{ $labels.team }}}} failed in the last hour.",
              "alerting.teamTaskFailuresPerHour"),
        Alert("AirflowTaskMetricsExporterDown", f"(sum(rate({HEARTBEAT}[5m])) or vector(0)) == 0", "10m", "warning", "task-metrics",
              "The task metrics exporter does not report",
              "The exporter that reads task failures, queue waits and parse staleness from the metadata DB has not reported for 10 minutes: "
              "AirflowNoCeleryWorker, AirflowTaskQueuedTooLong, AirflowTeamTaskFailures and AirflowDagParseSlow are blind."),
    ]
    from components import node_alerts  # here, not at the top: it builds on Alert

    return {"airflow.health": health, "airflow.capacity": capacity, "airflow.nodes": node_alerts.alerts(cfg), "airflow.dags": dags,
            "airflow.teams": teams}


def alert_names(cfg: PlatformConfig) -> list[str]:
    return [alert.name for group in alerts(cfg).values() for alert in group]


def rule_groups(cfg: PlatformConfig) -> list[dict[str, Any]]:
    """The groups of the PrometheusRule (also the content of a promtool rule file)."""
    base = cfg.alerting.runbook_base_url
    return [{"name": name, "rules": [alert.rule(base) for alert in group]} for name, group in alerts(cfg).items()]


def prometheus_rule(cfg: PlatformConfig, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "airflow-platform", "namespace": namespace, "labels": RULE_LABELS},
            "spec": {"groups": rule_groups(cfg)}}


# --- Alertmanager ------------------------------------------------------------------------------------

def _secret_file(key: str) -> str:
    return f"{RECEIVER_SECRETS_DIR}/{SECRET_FILES[key]}"


def _slack(cfg: PlatformConfig, channel: str) -> list[dict[str, Any]]:
    if cfg.slack_bot_token is None:
        return []
    return [{"api_url": SLACK_API, "channel": channel, "send_resolved": True,
             "http_config": {"authorization": {"type": "Bearer", "credentials_file": _secret_file("slack_bot_token")}},
             "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}',
             "text": "{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }}\n{{ end }}"}]


def _pager(cfg: PlatformConfig) -> dict[str, Any]:
    if cfg.alerting.critical_receiver == "opsgenie":
        return {"opsgenie_configs": [{"api_key_file": _secret_file("opsgenie_api_key"), "priority": "P1"}]} if cfg.opsgenie_api_key else {}
    return {"pagerduty_configs": [{"routing_key_file": _secret_file("pager_duty_routing_key"), "severity": "critical"}]} if cfg.pager_duty_routing_key else {}


def _watchdog(cfg: PlatformConfig) -> dict[str, Any]:
    if cfg.alerting.watchdog_url is None:
        return {}
    webhook: dict[str, Any] = {"url": cfg.alerting.watchdog_url, "send_resolved": False}
    if cfg.watchdog_token is not None:
        webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": _secret_file("watchdog_token")}}
    return {"webhook_configs": [webhook]}


def receivers(cfg: PlatformConfig) -> list[dict[str, Any]]:
    platform = _slack(cfg, cfg.alerting.platform_slack_channel)
    result = [
        {"name": "null"},
        {"name": "watchdog", **_watchdog(cfg)},
        {"name": "critical", **_pager(cfg), **({"slack_configs": platform} if platform else {})},
        {"name": "platform", **({"slack_configs": platform} if platform else {})},
    ]
    for team in cfg.teams:
        if team.slack_channel:
            channel = _slack(cfg, team.slack_channel)
            result.append({"name": f"team-{team.name}", **({"slack_configs": channel} if channel else {})})
    return result


def alertmanager_config(cfg: PlatformConfig) -> dict[str, Any]:
    """Alertmanager's own (snake_case) configuration."""
    team_routes = [{"receiver": f"team-{team.name}", "matchers": [f'team="{team.name}"']} for team in cfg.teams if team.slack_channel]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "platform",
            "group_by": ["alertname", "namespace", "team"],
            "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
            "routes": [
                # The always-firing Watchdog proves the pipeline works; it goes to the dead man's switch, every minute.
                {"receiver": "watchdog", "matchers": ['alertname="Watchdog"'], "group_wait": "0s", "group_interval": "1m", "repeat_interval": "1m"},
                # The stack's InfoInhibitor exists only to mute info alerts (below); nobody needs to hear it.
                {"receiver": "null", "matchers": ['alertname="InfoInhibitor"']},
                # Criticals page, and carry on so a team route can copy them to the team's channel.
                {"receiver": "critical", "matchers": ['severity="critical"'], "continue": True, "repeat_interval": "1h"},
                *team_routes,
                {"receiver": "platform", "matchers": ['severity=~"warning|info"']},
            ],
        },
        # While a critical fires, the warnings of the same namespace add only noise; info alerts stay muted unless
        # something else fires in their namespace (the stack's InfoInhibitor).
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'], "equal": ["namespace"]},
            {"source_matchers": ['alertname="InfoInhibitor"'], "target_matchers": ['severity="info"'], "equal": ["namespace"]},
        ],
        "receivers": receivers(cfg),
    }


def receiver_secret_keys(cfg: PlatformConfig) -> dict[str, str]:
    """Config attribute -> Secret key, for every credential the stack has set."""
    return {attr: key for attr, key in SECRET_FILES.items() if getattr(cfg, attr) is not None}
