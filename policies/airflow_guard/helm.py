"""Helm releases: charts pinned to an exact version, and no secret written into values or ConfigMaps.

Objects a Helm Release installs are invisible to CrossGuard, so a release's values are the contract these policies
(and those of airflow.py and karpenter.py) read.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Mapping, Optional

from .model import UNKNOWN, Resource, Stack, known, policy

RELEASE = "kubernetes:helm.sh/v3:Release"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
AIRFLOW_CHART = "airflow"
EXACT_VERSION = re.compile(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?")
# Keys whose value is the secret itself (compared without case, '_' or '-'); *SecretName and friends name a Secret.
SECRET_KEYS = {"password", "passwd", "secret", "token", "apikey", "apitoken", "authtoken", "bearertoken", "clientsecret",
               "fernetkey", "secretkey", "webserversecretkey", "jwtsecret", "accesskey", "secretaccesskey", "privatekey",
               "routingkey", "servicekey", "webhookurl", "slackapiurl", "authpassword", "credentials"}
SECRET_ENV = re.compile(r"(PASSWORD|SECRET|TOKEN|FERNET_KEY|API_KEY|PRIVATE_KEY|SQL_ALCHEMY_CONN|RESULT_BACKEND|BROKER_URL)|^AIRFLOW_CONN_")
SECRET_TEXT = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a Slack webhook": re.compile(r"hooks\.slack\.com/(services|workflows)/"),
    "a Slack token": re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a URL with a password": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@"),
}
# A connection that is only its type (`aws://`: the pod's own credentials) holds nothing secret.
EMPTY_CONNECTION = re.compile(r"[a-z][a-z0-9+.-]*://")
# Grafana reads such a value from an environment variable or a file when it starts: a reference, not the secret.
GRAFANA_REFERENCE = re.compile(r"\$__(env|file)\{[^{}]+\}")
# The OIDC client secret of a grafana.ini auth.* section: judged by sso-client-secret-not-in-values (sso.py), which
# also accepts the references above, so a literal there is reported once.
SSO_CLIENT_SECRET = re.compile(r"(^|\.)grafana\.ini\.auth(\.[A-Za-z0-9_]+)?\.client_secret$")


def chart(release: Resource) -> str:
    """The chart's name, without a repository prefix ('apache-airflow/airflow' is 'airflow')."""
    return str(known(release.props.get("chart")) or "").rsplit("/", 1)[-1]


def only_chart(name: str):
    """A decorator: the check judges the releases of chart `name` and passes every other release."""
    def wrap(check):
        def judged(release: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
            return check(release, stack, config) if chart(release) == name else ()
        return judged
    return wrap


only_airflow = only_chart(AIRFLOW_CHART)  # the Airflow chart's release, every other release passing


def values(release: Resource) -> Mapping[str, Any]:
    return known(release.props.get("values")) or {}


@policy("helm-chart-version-pinned", types=(RELEASE,), severity="medium",
        description="Every Helm release installs an exact chart version.",
        remediation="Set version to an exact release (airflow 1.19.0, keda 2.20.2, opentelemetry-collector 0.170.0, "
                    "kube-prometheus-stack 88.5.3): a range or no version upgrades the chart behind the pull request's back.")
def chart_pinned(release: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    version = known(release.props.get("version"))
    if not version or not EXACT_VERSION.fullmatch(str(version)):
        yield f"release {release.name} installs {chart(release)} {version or 'at whatever version is latest'}"


def entries(tree: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every entry of nested values, maps and lists alike; what is inside an unknown value is not
    reached."""
    if isinstance(tree, Mapping):
        for key, item in tree.items():
            yield f"{where}.{key}", str(key), item
            yield from entries(item, f"{where}.{key}")
    elif isinstance(tree, (list, tuple)):
        for index, item in enumerate(tree):
            yield from entries(item, f"{where}[{index}]")


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _strings(value: Any, where: str) -> Iterator[tuple[str, str, str]]:
    """(path, key, text) for every string in nested values."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if item is UNKNOWN:
                continue
            if isinstance(item, str):
                yield f"{where}.{key}" if where else key, str(key), item
            else:
                yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
                yield f"{where}[{index}]", "env:" + item["name"], item["value"]
            else:
                yield from _strings(item, f"{where}[{index}]")


def secret_literals(tree: Any, where: str = "") -> list[str]:
    """Where secrets are written out in `tree`, without the secrets themselves."""
    found = []
    for place, key, text in _strings(tree, where):
        if not text or GRAFANA_REFERENCE.fullmatch(text.strip()) or SSO_CLIENT_SECRET.search(place):
            continue
        if key.startswith("env:"):
            if SECRET_ENV.search(key[4:]) and not EMPTY_CONNECTION.fullmatch(str(text)):
                found.append(f"{place} sets {key[4:]} to a literal value")
            continue
        if _normal(key) in SECRET_KEYS:
            found.append(f"{place} holds a literal {key}")
            continue
        for kind, pattern in SECRET_TEXT.items():
            if pattern.search(text):
                found.append(f"{place} contains {kind}")
                break
    return found


@policy("helm-values-no-secret-literals", types=(RELEASE, CONFIG_MAP), severity="critical",
        description="No secret is written into Helm values or a ConfigMap.",
        remediation="Put the secret in a Kubernetes Secret (from pulumi_random or Secrets Manager, marked secret) and pass "
                    "its name: the chart's *SecretName keys, env valueFrom.secretKeyRef, or an Alertmanager *_file path; "
                    "values are readable by anyone who can run `helm get values`.")
def no_secret_literals(resource: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if resource.type == RELEASE:
        yield from (f"release {resource.name}: {finding}" for finding in secret_literals(values(resource), "values"))
    else:
        data = {"data": known(resource.props.get("data")) or {}}
        yield from (f"ConfigMap {resource.name}: {finding}" for finding in secret_literals(data))
