"""Single sign-on: the OIDC client secret (the stack secret ssoClientSecret) stays in its Kubernetes Secret.

Airflow's API server reads it in its webserver_config.py (apiServer.apiServerConfig, webserver.webserverConfig for
Airflow 2) from an environment variable, and Grafana from GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET; both variables are
filled from the Secret. Written anywhere else it lands where more people can read it: Helm keeps a release's values in
the release's own Secret, readable by whoever may read Helm's release data in that namespace (`helm get values`), and
a ConfigMap is readable by anyone who may read ConfigMaps there.

What the pack cannot tell: whether a value is a Pulumi secret. The Pulumi CLI hands secret inputs to the analyzer
marked, but pulumi-policy (1.21.0, deserialize_properties in Analyze and AnalyzeStack) unwraps them before any policy
runs, and the offline plan hands the pack the same unwrapped inputs; so a secret output placed inside a release's
values looks like any other string. These checks therefore read what is written: a `client_secret` given a literal in
the Python config, in grafana.ini or in a ConfigMap, however it got there.
"""

from __future__ import annotations

import ast
import re
from typing import Any, Iterable, Iterator, Mapping, Optional

from .helm import CONFIG_MAP, GRAFANA_REFERENCE, RELEASE, entries, values
from .model import Resource, Stack, known, policy

# The chart keys whose value is FAB's webserver_config.py (Airflow 3's API server; Airflow 2's webserver).
PYTHON_CONFIG_KEYS = ("apiServerConfig", "webserverConfig")
GRAFANA_INI = "grafana.ini"
# Grafana's variables for a provider's secret, GF_AUTH_<PROVIDER>_CLIENT_SECRET (GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET).
GRAFANA_SECRET_ENV = re.compile(r"GF_AUTH_[A-Z0-9_]+_CLIENT_SECRET")
# `client_secret = value` / `clientSecret: value` on a line of an ini, YAML, properties or env file.
ASSIGNED = re.compile(r"""^[ \t]*["']?(?P<key>[A-Za-z0-9_.-]*client[_-]?secret)["']?[ \t]*[:=][ \t]*(?P<value>.*?)[ \t]*,?[ \t]*$""",
                      re.IGNORECASE | re.MULTILINE)
EMPTY = ("", "~", "null", "None", '""', "''")


def _is_secret_name(name: str) -> bool:
    return name.lower().replace("_", "").replace("-", "").endswith("clientsecret")


def _literal(node: Optional[ast.AST]) -> bool:
    """A string written in the source: a non-empty constant, an f-string of constants only, or a sum of those."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value != ""
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(part, ast.Constant) for part in node.values) and bool(node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) and _literal(node.right)
    return False


def _falls_back_to_literal(node: Optional[ast.AST]) -> bool:
    """os.environ.get("X", "literal") or os.getenv("X", "literal"): a literal secret whenever the variable is unset."""
    return isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)) and \
        getattr(node.func, "attr", getattr(node.func, "id", "")) in ("get", "getenv") and len(node.args) >= 2 and _literal(node.args[1])


def _target_name(target: ast.AST) -> Optional[str]:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str):
        return target.slice.value
    return None


def _python_findings(text: str) -> Optional[list[tuple[int, str, str]]]:
    """(line, name, how) for each client secret the module writes as a literal; None when the text is not Python."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    found = []

    def judge(line: int, name: Optional[str], value: Optional[ast.AST]) -> None:
        if name and _is_secret_name(name):
            if _literal(value):
                found.append((line, name, "a literal"))
            elif _falls_back_to_literal(value):
                found.append((line, name, "a literal fallback"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                judge(node.lineno, _target_name(target), node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            judge(node.lineno, _target_name(node.target), node.value)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    judge(key.lineno, key.value, value)
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                judge(keyword.value.lineno, keyword.arg, keyword.value)
    return sorted(set(found))


def _line_findings(text: str, python: bool) -> list[tuple[int, str, str]]:
    """The same, line by line, for text that is not a Python module (an ini, YAML or env file; or a templated module,
    where only a quoted string counts as a literal)."""
    found = []
    for match in ASSIGNED.finditer(text):
        value = match["value"]
        quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
        if value in EMPTY or GRAFANA_REFERENCE.fullmatch(value.strip("'\"")) or (python and not quoted):
            continue
        found.append((text.count("\n", 0, match.start()) + 1, match["key"], "a literal"))
    return found


def text_findings(text: str, python: bool) -> list[str]:
    """Where `text` gives a client secret a literal value, without the value."""
    found = (_python_findings(text) if python else None)
    if found is None:
        found = _line_findings(text, python)
    return [f"line {line} gives {name} {how}" for line, name, how in found]


def _grafana_ini(where: str, ini: Mapping[str, Any]) -> Iterator[str]:
    """Every auth.* section's client_secret: absent, empty, or a $__env{...} / $__file{...} reference."""
    sections = []
    for name, section in ini.items():
        if name.startswith("auth.") and isinstance(section, Mapping):
            sections.append((name, section))
        elif name == "auth" and isinstance(section, Mapping):  # auth: {generic_oauth: {...}}, as Helm merges it
            sections += [(f"auth.{sub}", inner) for sub, inner in section.items() if isinstance(inner, Mapping)]
    for name, section in sections:
        secret = known(section.get("client_secret"))
        if secret in (None, "") or (isinstance(secret, str) and GRAFANA_REFERENCE.fullmatch(secret.strip())):
            continue
        yield f"{where} [{name}] client_secret is a literal, not a $__env{{...}} or $__file{{...}} reference"


def release_findings(release: Resource) -> Iterator[str]:
    for where, key, item in entries(values(release), "values"):
        if key in PYTHON_CONFIG_KEYS + (GRAFANA_INI,):
            item = known(item)  # a config computed from an output not known yet is undecided, not passed
        if key in PYTHON_CONFIG_KEYS and isinstance(item, str):
            yield from (f"{where} {finding}" for finding in text_findings(item, python=True))
        elif key == GRAFANA_INI and isinstance(item, Mapping):
            yield from _grafana_ini(where, item)
        elif key == "env" and isinstance(item, Mapping):  # the grafana chart's env: {NAME: value}
            for name, value in item.items():
                if GRAFANA_SECRET_ENV.fullmatch(str(name)) and isinstance(value, str) and value and not GRAFANA_REFERENCE.fullmatch(value):
                    yield f"{where}.{name} is a literal, not envValueFrom or envFromSecret"


@policy("sso-client-secret-not-in-values", types=(RELEASE, CONFIG_MAP), severity="critical",
        description="The OIDC client secret is never written into Helm values or a ConfigMap: Airflow's "
                    "apiServer.apiServerConfig (or webserver.webserverConfig) reads it from the environment or a file, "
                    "grafana.ini's auth.* sections leave client_secret out or reference $__env{...} or $__file{...}, and no "
                    "ConfigMap's data gives a client_secret a literal value.",
        remediation="Keep the secret in its Kubernetes Secret (from the stack secret ssoClientSecret) and read it from there: "
                    "os.environ['AIRFLOW_PLATFORM_SSO_CLIENT_SECRET'] in the webserver config, with the variable from "
                    "env valueFrom.secretKeyRef; for Grafana GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET from envValueFrom or "
                    "envFromSecret, nothing in grafana.ini. Values are readable with `helm get values`, ConfigMaps by anyone "
                    "who may read them.")
def client_secret_not_in_values(resource: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if resource.type == RELEASE:
        yield from (f"release {resource.name}: {finding}" for finding in release_findings(resource))
        return
    for key, text in (known(resource.props.get("data")) or {}).items():
        if isinstance(text, str):
            yield from (f"ConfigMap {resource.name}: data.{key} {finding}" for finding in text_findings(text, python=key.endswith(".py")))
