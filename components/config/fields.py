"""The building blocks of the typed stack config: the error every refusal raises, and the checked field types.

Each check raises pydantic's custom error with our own sentence (`requirement`), which `errors` turns into one
`ConfigError` naming the key.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any

import pulumi
from pydantic import AfterValidator, SecretStr
from pydantic_core import PydanticCustomError

from components import instance_classes

PROJECT = "airflow-platform"
REGION_KEY = "aws:region"
PRODUCTION_ENVIRONMENT_NAMES = ("prod", "production")
# Tags the program sets itself on every resource; the stack's `tags` may not override them.
RESERVED_TAG_KEYS = ("environment", "owner", "managed-by")
# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
# The values RDS accepts for Performance Insights retention: 7 days (free) or whole months up to 2 years.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = (7, *(31 * months for months in range(1, 24)), 731)
MIN_KUBERNETES_MINOR = 30
# Keys whose values must be Pulumi secrets, with a harmless example of each (the offline plan uses it when the
# stack file holds the key's ciphertext, which only the real stack can decrypt).
SECRET_KEYS = {
    "slackWebhookUrl": "https://hooks.slack.com/services/T00000000/B00000000/offlineplanexample",
    "slackBotToken": "xoxb-000000000000-0000000000000-offlineplanexample",
    "pagerDutyRoutingKey": "0123456789abcdef0123456789abcdef",
    "opsgenieApiKey": "00000000-0000-4000-8000-000000000000",
    "watchdogToken": "offline-plan-example-token",
    "alarmWebhookUrl": "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue",
    "ssoClientSecret": "offline-plan-example-client-secret",
}


class ConfigError(pulumi.RunError):
    """A stack config problem, told as one sentence that names the key and what is allowed.

    It derives from `pulumi.RunError`, so `pulumi preview` and `pulumi up` print the sentence without a traceback.
    """

    _NOTHING = object()

    def __init__(self, key: str, requirement: str, got: Any = _NOTHING):
        self.key = key
        shown = "" if got is ConfigError._NOTHING else f" (got {show(got)})"
        super().__init__(f"Config key '{qualified(key)}' {requirement}{shown}.")


def qualified(key: str) -> str:
    """The key as the stack file spells it: `airflow-platform:zones`, `aws:region`."""
    return key if ":" in key.split(".")[0] else f"{PROJECT}:{key}"


def show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (str, bool, int, float, type(None))) else repr(value)


def matching(pattern: str, requirement: str) -> AfterValidator:
    """A string check whose error is our sentence (`requirement`), not a regular expression."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise PydanticCustomError("config", requirement)
        return value

    return AfterValidator(check)


def private_ipv4_network(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        raise PydanticCustomError("config", "must be an IPv4 network in CIDR form with no host bits set, like 10.0.0.0/16")
    if not 16 <= network.prefixlen <= 20 or not network.is_private:
        raise PydanticCustomError("config", "must be a private IPv4 network from /16 to /20, like 10.0.0.0/16")
    return value


def public_access_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        raise PydanticCustomError("config", "must be an IPv4 CIDR block with no host bits set, like 203.0.113.0/24")
    if network.prefixlen == 0:
        raise PydanticCustomError("config", "must not open the API endpoint to the whole internet (0.0.0.0/0); list your own CIDR blocks")
    return value


def one_of(allowed: tuple[int, ...], what: str) -> AfterValidator:
    def check(value: int) -> int:
        if value not in allowed:
            raise PydanticCustomError("config", f"must be one of the {what}: {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


def known_db_instance_class(value: str) -> str:
    if not instance_classes.is_known(value):
        raise PydanticCustomError(
            "config",
            "must be an RDS class of the t3, t4g, m5-m8 or r5-r8 families, like db.t4g.medium or db.m7g.large",
        )
    if not instance_classes.supports_performance_insights(value):
        raise PydanticCustomError("config", "must support Performance Insights, which db.t3 and db.t4g micro and small do not")
    return value


def secret_matching(pattern: str, requirement: str) -> AfterValidator:
    """A check of a secret's shape whose error never repeats the secret."""
    regex = re.compile(pattern)

    def check(value: SecretStr) -> SecretStr:
        if not regex.fullmatch(value.get_secret_value()):
            raise PydanticCustomError("config", requirement)
        return value

    return AfterValidator(check)


HttpsUrlSecret = Annotated[SecretStr, secret_matching(r"https://[\w.-]+(:\d+)?(/\S*)?", "must be an https:// URL")]
# A base that each alert's runbook_url extends with /<AlertName>.md: no trailing /, query or fragment to break the join.
RunbookBaseUrl = Annotated[str, matching(
    r"https://[\w.-]+(:\d+)?(/[^\s?#]*[^\s?#/])?",
    "must be an https:// URL without a trailing /, query or fragment (each alert's runbook is <this>/<AlertName>.md), "
    "like https://github.com/example-org/airflow-platform/blob/main/docs/runbooks")]
SlackChannel = Annotated[str, matching(r"#[a-z0-9_-]{1,80}", "must be a Slack channel name, like #data-platform-alerts")]


def eks_version(value: str) -> str:
    match = re.fullmatch(r"1\.(\d+)", value)
    if not match or int(match.group(1)) < MIN_KUBERNETES_MINOR:
        raise PydanticCustomError("config", f"must be an EKS Kubernetes version 1.{MIN_KUBERNETES_MINOR} or newer, written like \"1.33\"")
    return value


DnsName = Annotated[str, matching(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?",
                                   "must be a DNS-safe name: lower-case letters, digits and '-', starting with a letter, at most 32 characters")]
# Short enough that every name built from it fits AWS's limits (an IAM role name is at most 64 characters:
# airflow-<environment>-ci-<team> with a 32-character team name).
EnvironmentName = Annotated[str, matching(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?",
                                           "must be a DNS-safe name: lower-case letters, digits and '-', starting with a letter, at most 20 characters")]
TagValue = Annotated[str, matching(r"[\w.:/=+\-@ ]{1,256}",
                                    "must be 1 to 256 letters, digits, spaces or any of . : / = + - @ _")]
InstanceType = Annotated[str, matching(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "must be an EC2 instance type, like m6i.large")]
IamRoleArn = Annotated[str, matching(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+",
                                      "must be an IAM role ARN, like arn:aws:iam::123456789012:role/platform-admin")]

def cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(re.fullmatch(r"[\d*/,\-]+", f) for f in fields):
        raise PydanticCustomError("config", "must be a five-field cron schedule, like \"0 3 * * 0\"")
    return value


ImageReference = Annotated[str, matching(
    r"[a-z0-9.\-/:]+(:(?!latest$)[\w.\-]+|@sha256:[0-9a-f]{64})",
    "must be an image with a pinned tag (not latest) or digest, like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/objinsync:2.5.0")]



# Namespaces the task pods must not share: Airflow's own, KEDA's, and Kubernetes' (RBAC, quota and Pod Security
# labels given to the task namespace would land on them).
RESERVED_NAMESPACES = ("airflow", "keda", "default", "kube-system", "kube-public", "kube-node-lease")


def task_namespace(value: str) -> str:
    if value in RESERVED_NAMESPACES:
        raise PydanticCustomError("config", f"must be a namespace of its own, not one of {', '.join(RESERVED_NAMESPACES)}")
    return value


# A mirror on the machine itself may speak plain HTTP (a test, or a registry in front of a local cache); nothing else may.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_CHART_REPOSITORY = re.compile(r"(?P<scheme>https|http|oci)://(?P<host>[A-Za-z0-9.-]+|\[::1\])(:\d{1,5})?(/[\w.~%-]+)*")


def chart_repository(value: str) -> str:
    match = _CHART_REPOSITORY.fullmatch(value)
    if not match:
        raise PydanticCustomError("config", "must be an https:// Helm repository or an oci:// registry path without a trailing /, like "
                                            "https://charts.example.com/airflow or oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/helm-charts")
    if match["scheme"] == "http" and match["host"] not in LOOPBACK_HOSTS:
        raise PydanticCustomError("config", "must use https:// (or oci://): plain http:// is allowed only on a loopback address, "
                                            "because a chart fetched in clear can be altered on the way")
    return value
