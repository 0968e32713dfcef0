"""The `alerting` key: alert rules and routes."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from components.config.fields import RunbookBaseUrl, SlackChannel, matching
from components.config.model import Model


class AlertingConfig(Model):
    """Where alerts go, and the thresholds of the Airflow alert rules."""

    critical_receiver: Literal["pagerduty", "opsgenie"] = Field(
        "pagerduty", description="Who pages for critical alerts (with the secret pagerDutyRoutingKey or opsgenieApiKey).")
    platform_slack_channel: SlackChannel = Field("#data-platform-alerts", description="The platform team's channel: warnings, and a copy of criticals.")
    scheduler_loop_seconds: int = Field(30, ge=1, le=3600, description="A scheduler loop longer than this (for 10 minutes) raises AirflowSchedulerLoopSlow.")
    queued_task_sla_minutes: int = Field(15, ge=1, le=1440, description="A task queued longer than this raises AirflowTaskQueuedTooLong.")
    dag_parse_seconds: int = Field(120, ge=1, le=3600, description="A DAG not re-parsed for longer than this (for 5 minutes) raises AirflowDagParseSlow; "
                                                                                "files are re-parsed every 30 s when parsing keeps up.")
    team_task_failures_per_hour: int = Field(10, ge=1, le=100_000, description="Failed task instances of one team in an hour that raise AirflowTeamTaskFailures.")
    pending_pod_minutes: int = Field(10, ge=1, le=1440, description="A Celery worker pod, or a pod of the task namespace (airflow.taskPods.namespace), "
                                                                     "Pending longer than this raises AirflowWorkerPodsPending or AirflowTaskPodsPending "
                                                                     "(Pending covers waiting for a new node, the image pull and the init containers).")
    watchdog_url: Optional[Annotated[str, matching(r"https://[\w.-]+(:\d+)?(/\S*)?", "must be an https:// URL")]] = Field(
        None, description="Dead man's switch: the always-firing Watchdog alert is posted here every minute, so silence means alerting is broken. "
                          "Not a secret (Alertmanager cannot read a URL from a file before 0.26); put a credential in the secret watchdogToken.")
    runbook_base_url: RunbookBaseUrl = Field(
        "docs/runbooks", description="Where the runbook pages of docs/runbooks/ are browsable (your fork's docs URL); "
                                     "each alert's runbook_url is <this>/<AlertName>.md. When set, an https:// URL "
                                     "without a trailing /; unset, the repository-relative folder.")
