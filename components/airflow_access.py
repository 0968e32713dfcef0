"""Airflow's AWS access: one IRSA role per component that needs more than reading DAGs, the Secrets Manager
prefix Airflow reads connections and variables from (with its key), and the company Slack connection.

Each role trusts exactly one service account. What each component may do:
- workers, triggerer, DAG processor: write and read task logs under `logs/`, read `<prefix>/connections/*`
  and `<prefix>/variables/*`;
- API server: read task logs (to show them).
The scheduler needs nothing beyond reading DAGs, so its account uses the DAG bucket's read-only role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components import iam, kms
from components.names import AIRFLOW_NAMESPACE as NAMESPACE, LOGS_PREFIX, SERVICE_ACCOUNTS

SLACK_CONNECTION_ID = "platform_slack"
GRANTS = {
    "workers": ("write-logs", "read-secrets"),
    "triggerer": ("write-logs", "read-secrets"),
    "dagProcessor": ("write-logs", "read-secrets"),
    "apiServer": ("read-logs",),
}


def slack_connection(webhook_url: str) -> str:
    """The connection as Airflow's Secrets Manager backend reads it: JSON with the Slack webhook type."""
    return json.dumps({"conn_type": "slackwebhook", "password": webhook_url})


@dataclass
class AirflowAccessArgs:
    region: str
    partition: str
    account_id: str
    cluster_oidc: iam.OidcIssuer
    bucket_arn: pulumi.Input[str]
    bucket_key_arn: pulumi.Input[str]
    secrets_prefix: str
    protect: bool
    slack_webhook_url: Optional[pulumi.Output[str]] = None


class AirflowAccess(pulumi.ComponentResource):
    role_arns: dict[str, pulumi.Output[str]]
    secrets_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AirflowAccessArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:AirflowAccess", name, None, opts)
        self._args = args
        account = kms.Account(args.partition, args.account_id)
        key = kms.customer_managed_key(f"{name}-secrets", "Airflow connections and variables in Secrets Manager", self, args.protect, account, [
            # Through Secrets Manager only, for the principals whose IAM policies name this key: the component roles
            # below that read secrets, and whoever writes a connection or variable (the deployer, for Slack's).
            kms.through_service("AccountUsesThroughSecretsManager", account, kms.service_host("secretsmanager", args.region),
                                kms.ENVELOPE_ACTIONS)])
        self.secrets_key_arn = key.arn
        self.role_arns = {component: self._role(name, component, grants) for component, grants in GRANTS.items()}

        if args.slack_webhook_url is not None:
            secret = aws.secretsmanager.Secret(
                f"{name}-slack", name=f"{args.secrets_prefix}/connections/{SLACK_CONNECTION_ID}", kms_key_id=key.arn,
                description="Company Slack webhook: the connection behind the platform notifier",
                # A deleted secret's name stays taken during the recovery window.
                recovery_window_in_days=30 if args.protect else 7,
                opts=pulumi.ResourceOptions(parent=self))
            aws.secretsmanager.SecretVersion(
                f"{name}-slack-value", secret_id=secret.id,
                secret_string=pulumi.Output.secret(args.slack_webhook_url.apply(slack_connection)),
                opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"roleArns": self.role_arns})

    def _statements(self, grant: str) -> list[dict]:
        args = self._args
        logs = pulumi.Output.concat(args.bucket_arn, f"/{LOGS_PREFIX}/*")
        via_s3 = {"test": "StringEquals", "variable": "kms:ViaService", "values": [f"s3.{args.region}.amazonaws.com"]}
        list_logs = {"actions": ["s3:ListBucket"], "resources": [args.bucket_arn],
                     "conditions": [{"test": "StringLike", "variable": "s3:prefix", "values": [f"{LOGS_PREFIX}/*"]}]}
        if grant == "write-logs":
            return [list_logs, {"actions": ["s3:GetObject", "s3:PutObject"], "resources": [logs]},
                    {"actions": ["kms:GenerateDataKey", "kms:Decrypt"], "resources": [args.bucket_key_arn], "conditions": [via_s3]}]
        if grant == "read-logs":
            return [list_logs, {"actions": ["s3:GetObject"], "resources": [logs]},
                    {"actions": ["kms:Decrypt"], "resources": [args.bucket_key_arn], "conditions": [via_s3]}]
        secrets = f"arn:{args.partition}:secretsmanager:{args.region}:{args.account_id}:secret:{args.secrets_prefix}"
        return [{"actions": ["secretsmanager:GetSecretValue"], "resources": [f"{secrets}/connections/*", f"{secrets}/variables/*"]},
                {"actions": ["kms:Decrypt"], "resources": [self.secrets_key_arn],
                 "conditions": [{"test": "StringEquals", "variable": "kms:ViaService", "values": [f"secretsmanager.{args.region}.amazonaws.com"]}]}]

    def _role(self, name: str, component: str, grants: tuple[str, ...]) -> pulumi.Output[str]:
        account = SERVICE_ACCOUNTS[component]
        short = account.removeprefix("airflow-")
        role = aws.iam.Role(
            f"{name}-{short}", description=f"Airflow {component}: {', '.join(grants)}",
            assume_role_policy=iam.irsa_trust(self._args.cluster_oidc, NAMESPACE, [account], self),
            opts=pulumi.ResourceOptions(parent=self))
        statements = [statement for grant in grants for statement in self._statements(grant)]
        aws.iam.RolePolicy(f"{name}-{short}-policy", role=role.id, policy=iam.document(statements, self),
                           opts=pulumi.ResourceOptions(parent=self))
        return role.arn
