"""Observability: the alerts the platform is run by exist, and Alertmanager routes critical ones somewhere."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .helm import RELEASE, chart, only_airflow, values
from .model import Resource, Stack, known, path, policy

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
STACK_CHART = "kube-prometheus-stack"
CRITICAL = re.compile(r"""severity\s*=\s*"?critical"?$""")


@policy("observability-required-alerts", types=(RELEASE,), needs_stack=True, severity="high",
        description="The alerts the platform is operated by are deployed with Airflow.",
        remediation="Keep the Observability component on: its PrometheusRule holds these alerts (components/alerting.py), "
                    "each tested with promtool.",
        config_schema={"alerts": {"type": "array", "items": {"type": "string"},
                                  "default": ["AirflowSchedulerDown", "AirflowTriggererDown", "AirflowDagProcessorDown",
                                              "AirflowSchedulerLoopSlow", "AirflowNoCeleryWorker", "AirflowTaskQueuedTooLong",
                                              "AirflowDagParseSlow", "AirflowDagImportErrors", "AirflowDagSyncFailing",
                                              "AirflowTeamTaskFailures"],
                                  "description": "Alert names that must exist in the stack's PrometheusRules."}})
@only_airflow
def required_alerts(release: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    present = {known(rule.get("alert")) for resource in stack.of_type(PROMETHEUS_RULE)
               for group in as_list(path(resource.props, "spec.groups")) for rule in as_list(group.get("rules"))}
    missing = [name for name in config["alerts"] if name not in present]
    if missing:
        yield f"release {release.name} has no alert {', '.join(missing)}"


def _routes_critical(route: Mapping[str, Any]) -> bool:
    matchers = [str(m).replace(" ", "") for m in as_list(route.get("matchers"))]
    return any(CRITICAL.search(m) for m in matchers) or (route.get("match") or {}).get("severity") == "critical"


@policy("alertmanager-critical-route", types=(RELEASE,), needs_stack=True, severity="high",
        description="Alertmanager routes critical alerts to a receiver of their own before anything else catches them.",
        remediation="Keep kube-prometheus-stack's alertmanager.config from components/alerting.py: a top-level route matching "
                    "severity=\"critical\" to the 'critical' receiver (PagerDuty or Opsgenie), with continue: true.")
@only_airflow
def critical_route(release: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    configs = [path(values(r), "alertmanager.config") for r in stack.of_type(RELEASE) if chart(r) == STACK_CHART]
    configs = [c for c in configs if c]
    if not configs:
        yield f"release {release.name} has no Alertmanager configured in this stack"
        return
    for config in configs:
        receivers = {known(r.get("name")) for r in as_list(config.get("receivers"))}
        routes = as_list(path(config, "route.routes"))
        critical = next((i for i, route in enumerate(routes) if _routes_critical(route)), None)
        if critical is None:
            yield "Alertmanager has no route for severity=\"critical\""
            continue
        receiver = routes[critical].get("receiver")
        if receiver not in receivers or receiver == "null":
            yield f"Alertmanager routes critical alerts to {receiver!r}, which is not a receiver that notifies"
        swallowing = [i for i, route in enumerate(routes[:critical]) if not as_list(route.get("matchers")) and not route.get("match")
                      and not route.get("continue")]
        if swallowing:
            yield f"Alertmanager route {swallowing[0] + 1} catches every alert before the critical route"
