"""Tests the metrics path as the charts render it: the collector's effective configuration, Airflow's airflow.cfg pointing
at the collector's Service, the ServiceMonitor Prometheus selects, Prometheus and Alertmanager as the operator receives
them, and the program's alert rules selected by that Prometheus."""

from __future__ import annotations

import base64

import pytest
import yaml

from components import alerting
from tests.rendered import airflow_cfg, pod, selects


def collector_config(result) -> dict:
    [config_map] = result.releases["otel-collector"].of_kind("ConfigMap")
    return yaml.safe_load(config_map["data"]["relay"])


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_collector_runs_only_what_airflow_uses(rendering, variant):
    """OTLP/HTTP in, the Prometheus exporter out, one metrics pipeline: the chart's other default receivers, pipelines and
    the debug exporter are gone from the configuration the collector runs."""
    config = collector_config(rendering(variant))
    assert config["receivers"] == {"otlp": {"protocols": {"http": {"endpoint": "${env:MY_POD_IP}:4318"}}}}
    assert config["exporters"] == {"prometheus": {"endpoint": "${env:MY_POD_IP}:8889", "metric_expiration": "5m"}}
    assert config["service"]["pipelines"] == {
        "metrics": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["prometheus"]}}
    assert (config["service"]["extensions"], sorted(config["processors"])) == (["health_check"], ["batch", "memory_limiter"])


def test_collector_listens_where_airflow_sends(rendering):
    """airflow.cfg names the collector's Service and its OTLP/HTTP port, which reaches the container listening on it."""
    prod = rendering("prod")
    metrics = airflow_cfg(prod)["metrics"]
    collector = prod.releases["otel-collector"]
    service = collector.named("Service", "otel-collector")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert (metrics["otel_host"], int(metrics["otel_port"])) == (host, 4318)
    [port] = [p for p in service["spec"]["ports"] if p["port"] == 4318]
    deployment = collector.named("Deployment", "otel-collector")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod(deployment)["metadata"]["labels"])
    container_ports = {p["containerPort"] for p in pod(deployment)["spec"]["containers"][0]["ports"]}
    assert port["targetPort"] in container_ports and container_ports == {4318, 8889}


def test_prometheus_scrapes_the_collector(rendering):
    """The stack's Prometheus selects the collector's ServiceMonitor, which selects the collector's Service and its port."""
    prod = rendering("prod")
    stack, collector = prod.releases["kube-prometheus-stack"], prod.releases["otel-collector"]
    [prometheus] = stack.of_kind("Prometheus")
    monitor = collector.named("ServiceMonitor", "otel-collector")
    assert selects(prometheus["spec"]["serviceMonitorSelector"], monitor["metadata"]["labels"])
    assert prometheus["spec"]["serviceMonitorNamespaceSelector"] == {}  # every namespace
    service = collector.named("Service", "otel-collector")
    assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["prom-metrics"]
    assert "prom-metrics" in [p["name"] for p in service["spec"]["ports"]]


@pytest.mark.parametrize("variant, days, gib, replicas", [("dev", 15, 50, 1), ("prod", 30, 200, 2)])
def test_prometheus_retention_and_storage(rendering, variant, days, gib, replicas):
    """Prometheus keeps the stack's retention on an encrypted gp3 volume, with a size cap below the volume."""
    [prometheus] = rendering(variant).releases["kube-prometheus-stack"].of_kind("Prometheus")
    spec = prometheus["spec"]
    assert (spec["retention"], spec["retentionSize"], spec["replicas"]) == (f"{days}d", f"{gib * 9 // 10}GiB", replicas)
    assert spec["storage"] == {"volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{gib}Gi"}}, "storageClassName": "gp3-encrypted"}}}


def test_prometheus_loads_the_platform_rules(rendering):
    """The PrometheusRule the program declares carries the label the stack's Prometheus selects rules by."""
    prod = rendering("prod")
    [prometheus] = prod.releases["kube-prometheus-stack"].of_kind("Prometheus")
    [rule] = prod.declared("PrometheusRule")
    assert selects(prometheus["spec"]["ruleSelector"], rule["metadata"]["labels"])
    assert prometheus["spec"]["ruleNamespaceSelector"] == {}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_alertmanager_runs_the_platform_routes(rendering, variant):
    """The configuration Secret the operator hands Alertmanager is the platform's own, and the receivers' Secret is mounted."""
    result = rendering(variant)
    stack = result.releases["kube-prometheus-stack"]
    secret = stack.named("Secret", "alertmanager-kube-prometheus-stack-alertmanager")
    # The chart adds only where Alertmanager finds its message templates.
    assert yaml.safe_load(base64.b64decode(secret["data"]["alertmanager.yaml"])) == {
        **alerting.alertmanager_config(result.cfg), "templates": ["/etc/alertmanager/config/*.tmpl"]}
    [alertmanager] = stack.of_kind("Alertmanager")
    assert (alertmanager["spec"]["secrets"], alertmanager["spec"]["replicas"]) == (["alertmanager-receivers"], 2 if variant == "prod" else 1)
    assert "alertmanager-receivers" in [s["metadata"]["name"] for s in result.declared("Secret")]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_airflow_exports_over_otlp_not_statsd(rendering, variant):
    """airflow.cfg has OTEL on, StatsD off in both places Airflow reads it, and the release runs no StatsD exporter."""
    result = rendering(variant)
    cfg = airflow_cfg(result)
    assert dict(cfg["metrics"]) == {
        "otel_host": "otel-collector.monitoring.svc.cluster.local", "otel_interval_milliseconds": "30000", "otel_on": "True",
        "otel_port": "4318", "otel_prefix": "airflow", "otel_ssl_active": "False", "statsd_host": "airflow-statsd",
        "statsd_on": "False", "statsd_port": "9125", "statsd_prefix": "airflow"}
    assert cfg["scheduler"]["statsd_on"] == "False"
    assert [d["metadata"]["name"] for d in result.releases["airflow"].of_kind("Deployment") if "statsd" in d["metadata"]["name"]] == []
