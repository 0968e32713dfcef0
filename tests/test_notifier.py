"""Tests the company notifier: one function per message, the platform's connection, and no secret held by teams."""

from __future__ import annotations

import subprocess

from components.platform import NOTIFIER
from airflow_platform_dagtool import conventions
from components import names

RENDER = """
import airflow_platform_notify as notify
from types import SimpleNamespace
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="analytics_orders", schedule=None, default_args={"owner": "analytics@example.com"}) as dag:
    EmptyOperator(task_id="load")
ti = SimpleNamespace(task_id="load", try_number=2, log_url="https://airflow.example.com/log")
failure = notify.on_failure()
failure.render_template_fields({"dag": dag, "ti": ti, "run_id": "scheduled__2026-11-24"})
success = notify.on_success()
success.render_template_fields({"dag": dag, "run_id": "scheduled__2026-11-24"})
print(failure.slack_webhook_conn_id)
print(failure.text)
print(success.text)
"""


def test_messages_render_through_the_platform_connection(dagtool_bin):
    """Failure and success messages render from the task context and go through the connection platform_slack."""
    result = subprocess.run([str(dagtool_bin / "python"), "-c", RENDER], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-3:] == [
        "platform_slack",
        ":red_circle: *analytics_orders* failed in run `scheduled__2026-11-24`: task `load` (try 2). Owner: analytics@example.com. "
        "<https://airflow.example.com/log|Logs>",
        ":large_green_circle: *analytics_orders* succeeded in run `scheduled__2026-11-24`. Owner: analytics@example.com.",
    ]


def test_module_holds_no_webhook():
    """The module names the connection only: no URL, token or key of Slack's in it."""
    source = NOTIFIER.read_text()
    assert "hooks.slack.com" not in source and "xox" not in source and 'CONNECTION_ID = "platform_slack"' in source


def test_conventions_match_the_platform():
    """dagtool, installed without the program, uses the same prefixes and manifest name as the platform."""
    assert (conventions.TEAMS_PREFIX, conventions.SHARED_PREFIX, conventions.MANIFEST) == (
        names.TEAMS_PREFIX, names.SHARED_PREFIX, names.PUBLISH_MANIFEST)


def test_slack_connection_id_matches(prod_plan):
    """The notifier's connection is the one the platform stores in Secrets Manager."""
    from components.airflow_access import SLACK_CONNECTION_ID

    assert f'CONNECTION_ID = "{SLACK_CONNECTION_ID}"' in NOTIFIER.read_text()
