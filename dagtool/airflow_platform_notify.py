"""The company notifier: templated Slack messages for a DAG's failures and successes.

Every team calls one function, and no team holds the webhook: the messages go through the Airflow connection
`platform_slack`, which the platform keeps in Secrets Manager. The platform publishes this module under the DAG
bucket's shared/ prefix, which every Airflow component syncs onto its Python path; `dagtool` installs it too,
so `dagtool check` imports DAGs that use it.

    from airflow_platform_notify import on_failure, on_success
    with DAG(..., on_failure_callback=on_failure(), on_success_callback=on_success()):
"""

from __future__ import annotations

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

CONNECTION_ID = "platform_slack"
FAILURE = (":red_circle: *{{ dag.dag_id }}* failed in run `{{ run_id }}`"
           "{% if ti %}: task `{{ ti.task_id }}` (try {{ ti.try_number }}){% endif %}. Owner: {{ dag.owner }}."
           "{% if ti %} <{{ ti.log_url }}|Logs>{% endif %}")
SUCCESS = ":large_green_circle: *{{ dag.dag_id }}* succeeded in run `{{ run_id }}`. Owner: {{ dag.owner }}."


def on_failure(text: str = FAILURE) -> SlackWebhookNotifier:
    """A notifier for on_failure_callback (DAG or task)."""
    return SlackWebhookNotifier(slack_webhook_conn_id=CONNECTION_ID, text=text)


def on_success(text: str = SUCCESS) -> SlackWebhookNotifier:
    """A notifier for on_success_callback (DAG or task)."""
    return SlackWebhookNotifier(slack_webhook_conn_id=CONNECTION_ID, text=text)
