"""Tests the Observability component: the OTEL collector (against its chart's schema), kube-prometheus-stack's values,
the PrometheusRule (against its CRD), the receivers' Secret, the dashboard, and Airflow's metrics wiring."""

from __future__ import annotations

import copy
import json
import re
import subprocess

import pytest
import yaml

from components import alerting
from components.config import SECRET_KEYS
from components.observability_values import airflow_metrics_config, kps_values, otel_values
from tests.conftest import stack_config, typed_config
from tools import render
from tools.kube_schema import Schemas
from tools.offline import Plan

RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def otel_errors(values_errors):
    return lambda values: values_errors("opentelemetry-collector", values)


@pytest.fixture(scope="module")
def rule_errors(located_chart):
    """The checks the API server applies to a PrometheusRule: the CRD kube-prometheus-stack ships, unknown fields refused."""
    crds = [crd for crd, _ in render._crds(located_chart("kube-prometheus-stack").path)]
    return Schemas("1.33", crds).errors


def release(plan: Plan, chart: str):
    [found] = [r for r in plan.of_type(RELEASE) if r.inputs["chart"] == chart]
    return found


def with_secrets(stack: str, *keys: str) -> dict:
    config = stack_config(stack)
    for key in keys:
        config[f"airflow-platform:{key}"] = {"secure": "v1:anything"}
    return config


class TestCollector:
    """Tests the OpenTelemetry Collector's values."""

    @pytest.mark.parametrize("path, bad, error", [
        (("mode",), "sidecar", "- at '/mode': value must be one of 'daemonset', 'deployment', 'statefulset', ''"),
        (("image", "pullPolicy"), "Sometimes", "- at '/image/pullPolicy': value must be one of 'IfNotPresent', 'Always', 'Never'"),
        (("unknownTopLevel",), 1, "- at '': additional properties 'unknownTopLevel' not allowed"),
    ], ids=["mode", "pull-policy", "unknown-key"])
    def test_schema_bites(self, otel_errors, path, bad, error):
        """The stack's values pass the chart's schema, and each broken one is refused naming the key."""
        values = copy.deepcopy(otel_values(typed_config(stack_config("prod"))))
        assert otel_errors(values) == []
        node = values
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        assert otel_errors(values) == [error]

    def test_deployment_with_pinned_contrib_image(self):
        """Deployment mode, the contrib image at the chart's appVersion by digest, two replicas in prod."""
        values = otel_values(typed_config(stack_config("prod")))
        assert (values["mode"], values["image"], values["replicaCount"]) == (
            "deployment", {"repository": "otel/opentelemetry-collector-contrib",
                           "tag": "0.158.0@sha256:c5918f78992ee73b0d6f0e599423ac5ec52dd5d9726733114d6eca53d5a32ed5"}, 2)

    def test_resources(self):
        """Requests and a memory limit (the chart sets GOMEMLIMIT from it)."""
        assert otel_values(typed_config(stack_config("dev")))["resources"] == {
            "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}


class TestAirflowToCollector:
    """Tests Airflow's [metrics] section and StatsD."""

    def test_airflow_sends_otlp_http_to_the_collector(self, prod_plan):
        """otel_on, the collector's service and OTLP/HTTP port, and StatsD off both in config and in the chart."""
        values = release(prod_plan, "airflow").inputs["values"]
        assert values["config"]["metrics"] == {
            "otel_on": "True", "otel_host": "otel-collector.monitoring.svc.cluster.local", "otel_port": 4318, "otel_prefix": "airflow",
            "otel_interval_milliseconds": 30000, "otel_ssl_active": "False", "statsd_on": "False"}
        assert values["statsd"] == {"enabled": False}

    def test_interval_from_config(self):
        """monitoring.metricsIntervalSeconds sets the export interval."""
        config = stack_config("dev")
        config["airflow-platform:monitoring"] = {"metricsIntervalSeconds": 15}
        assert airflow_metrics_config(typed_config(config))["otel_interval_milliseconds"] == 15000


class TestStack:
    """Tests kube-prometheus-stack's values."""

    def test_release(self, prod_plan):
        """kube-prometheus-stack 88.5.3 from prometheus-community into namespace monitoring."""
        stack = release(prod_plan, "kube-prometheus-stack")
        assert (stack.inputs["name"], stack.inputs["version"], stack.inputs["namespace"]) == ("kube-prometheus-stack", "88.5.3", "monitoring")
        assert stack.inputs["repositoryOpts"] == {"repo": "https://prometheus-community.github.io/helm-charts"}

    def test_alertmanager_reads_credentials_from_the_mounted_secret(self):
        """The receivers' Secret is mounted, and the config in the values is the platform's own."""
        cfg = typed_config(stack_config("prod"))
        alertmanager = kps_values(cfg, "gp3-encrypted")["alertmanager"]
        assert alertmanager["alertmanagerSpec"]["secrets"] == ["alertmanager-receivers"]
        assert alertmanager["config"] == alerting.alertmanager_config(cfg)

    def test_unscrapable_control_plane_off(self):
        """EKS's own control-plane parts are not scraped (they would only raise target-down alerts)."""
        values = kps_values(typed_config(stack_config("dev")), "gp3-encrypted")
        assert [values[k] for k in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")] == [{"enabled": False}] * 4

    def test_grafana_admin_from_a_secret_and_dashboards_by_label(self):
        """Grafana's admin comes from a generated Secret; its sidecar loads dashboards labelled grafana_dashboard=1."""
        grafana = kps_values(typed_config(stack_config("dev")), "gp3-encrypted")["grafana"]
        assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
        assert grafana["sidecar"]["dashboards"] == {"enabled": True, "label": "grafana_dashboard", "labelValue": "1"}

    def test_collector_after_the_stack(self, prod_plan):
        """The collector's ServiceMonitor needs the operator's CRDs, which come with the stack."""
        assert release(prod_plan, "kube-prometheus-stack").urn in release(prod_plan, "opentelemetry-collector").dependencies

    def test_stack_volumes_wait_for_the_storage_class(self, prod_plan):
        """The stack's volumes use the cluster's encrypted gp3 class, which must exist first."""
        [storage_class] = prod_plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
        assert storage_class.urn in release(prod_plan, "kube-prometheus-stack").dependencies


class TestPrometheusRule:
    """Tests the PrometheusRule object against the operator's CRD."""

    @pytest.mark.parametrize("field, bad, error", [
        ("for", "5 min", "'5 min' does not match"), ("for", "1.5m", "'1.5m' does not match"),
        ("labels", {"severity": 1}, "1 is not of type 'string'")], ids=["spaced-duration", "fractional-duration", "integer-label"])
    def test_crd_bites(self, rule_errors, field, bad, error):
        """The rule passes the operator's CRD, and a malformed duration or label value is refused."""
        rule = alerting.prometheus_rule(typed_config(stack_config("prod")), "monitoring")
        assert rule_errors(rule) == []
        rule["spec"]["groups"][0]["rules"][0][field] = bad
        [refusal] = rule_errors(rule)
        assert refusal.startswith(f"PrometheusRule monitoring/airflow-platform: spec.groups.0.rules.0.{field}") and error in refusal

    def test_rule_object_in_the_plan(self, prod_plan):
        """The plan declares it in namespace monitoring, labelled release=kube-prometheus-stack, after the stack."""
        [rule] = prod_plan.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        assert rule.inputs["metadata"] == {"name": "airflow-platform", "namespace": "monitoring", "labels": {"release": "kube-prometheus-stack"}}
        assert release(prod_plan, "kube-prometheus-stack").urn in rule.dependencies
        assert rule.inputs["spec"]["groups"] == alerting.rule_groups(typed_config(stack_config("prod")))

    def test_required_alerts_exist(self):
        """Every alert the platform promises is generated."""
        names = alerting.alert_names(typed_config(stack_config("prod")))
        assert names == ["AirflowSchedulerDown", "AirflowTriggererDown", "AirflowDagProcessorDown", "AirflowSchedulerReplicasMissing",
                         "AirflowTriggererReplicasMissing", "AirflowSchedulerLoopSlow",
                         "AirflowNoCeleryWorker", "AirflowTaskQueuedTooLong", "AirflowWorkersBelowMinimum", "AirflowWorkerPodsPending",
                         "AirflowTaskPodsPending", "KarpenterCannotLaunchNodes", "KarpenterNodePoolAtLimit", "AirflowDagParseSlow",
                         "AirflowDagImportErrors", "AirflowDagSyncFailing", "AirflowTeamTaskFailures", "AirflowTaskMetricsExporterDown"]

    def test_workers_minimum_alert_only_with_a_minimum(self):
        """With minReplicas 0 (scale to zero) there is no minimum to fall below, so no such alert."""
        config = stack_config("dev")
        config["airflow-platform:airflow"]["workers"]["minReplicas"] = 0
        assert "AirflowWorkersBelowMinimum" not in alerting.alert_names(typed_config(config))

    def test_replicas_alerts_only_with_more_than_one(self):
        """With one scheduler, triggerer and DAG processor (dev, and the DAG processor in prod) "fewer than the stack runs"
        is "none", which the *Down alerts say; with two of one of them, only that one gets its replicas alert."""
        replicas_alerts = ["AirflowSchedulerReplicasMissing", "AirflowTriggererReplicasMissing"]
        assert [n for n in alerting.alert_names(typed_config(stack_config("dev"))) if n.endswith("ReplicasMissing")] == []
        config = stack_config("dev")
        config["airflow-platform:airflow"]["replicas"] = {"triggerer": 2}
        assert [n for n in alerting.alert_names(typed_config(config)) if n.endswith("ReplicasMissing")] == ["AirflowTriggererReplicasMissing"]
        assert [n for n in alerting.alert_names(typed_config(stack_config("prod"))) if n.endswith("ReplicasMissing")] == replicas_alerts

    @pytest.mark.parametrize("alert, threshold", [("AirflowSchedulerLoopSlow", "> 20000"), ("AirflowTaskQueuedTooLong", "> 1800"),
                                                  ("AirflowDagParseSlow", "> 180"), ("AirflowTeamTaskFailures", "> 20"),
                                                  ("AirflowWorkersBelowMinimum", "< 3"), ("AirflowSchedulerReplicasMissing", "< 2"),
                                                  ("AirflowTriggererReplicasMissing", "< 2")],
                             ids=["loop-ms", "queued-s", "parse-s", "team-failures", "min-workers", "schedulers", "triggerers"])
    def test_thresholds_from_the_stack(self, alert, threshold):
        """Thresholds come from the prod stack file, converted to the metrics' units."""
        [rule] = [r for g in alerting.rule_groups(typed_config(stack_config("prod"))) for r in g["rules"] if r["alert"] == alert]
        assert rule["expr"].endswith(threshold)

    def test_queued_sla_in_seconds(self):
        """The queued-time SLA (30 minutes in prod) bounds the exporter's age of each DAG's oldest queued task, in seconds."""
        [rule] = [r for g in alerting.rule_groups(typed_config(stack_config("prod"))) for r in g["rules"] if r["alert"] == "AirflowTaskQueuedTooLong"]
        assert rule["expr"] == "max by (dag_id) (airflow_platform_oldest_queued_task_seconds) > 1800"


class TestReceiverSecret:
    """Tests the Secret Alertmanager's receivers read their credentials from."""

    def test_empty_without_credentials(self, prod_plan):
        """Without receiver secrets the Secret exists (Alertmanager mounts it) and holds nothing."""
        [secret] = [s for s in prod_plan.of_type("kubernetes:core/v1:Secret") if s.inputs["metadata"]["name"] == "alertmanager-receivers"]
        assert (secret.inputs["metadata"]["namespace"], secret.inputs.get("stringData", {})) == ("monitoring", {})

    def test_credentials_become_secret_keys(self, plan_with):
        """Each configured credential becomes one key, marked secret, named as the config's *_file paths expect."""
        config = with_secrets("prod", "slackBotToken", "pagerDutyRoutingKey", "watchdogToken")
        plan = plan_with("prod", {k: v for k, v in config.items() if k.endswith(("Token", "Key"))})
        [secret] = [s for s in plan.of_type("kubernetes:core/v1:Secret") if s.inputs["metadata"]["name"] == "alertmanager-receivers"]
        assert secret.inputs["stringData"] == {"pagerduty-routing-key": SECRET_KEYS["pagerDutyRoutingKey"],
                                               "slack-bot-token": SECRET_KEYS["slackBotToken"], "watchdog-token": SECRET_KEYS["watchdogToken"]}
        assert secret.secret_inputs == ["stringData"]
        text = json.dumps(plan.to_json())
        assert "xoxb-000000000000" not in text and "0123456789abcdef0123456789abcdef" not in text


@pytest.fixture(scope="module")
def dashboard(prod_plan) -> dict:
    """The dashboard as the plan ships it, in a ConfigMap Grafana's sidecar picks up by its label."""
    [config_map] = [c for c in prod_plan.of_type("kubernetes:core/v1:ConfigMap") if c.inputs["metadata"]["namespace"] == "monitoring"]
    assert config_map.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    return json.loads(config_map.inputs["data"]["airflow.json"])


class TestDashboard:
    """Tests the Airflow dashboard provisioned from dashboards/airflow.json."""

    def test_panels_cover_the_platform_signals(self, dashboard):
        """Heartbeat, loop duration, queued and running tasks, workers, parse staleness and import errors each have a panel."""
        expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
        for metric in ("airflow_scheduler_heartbeat_total", "airflow_scheduler_scheduler_loop_duration", "airflow_executor_queued_tasks",
                       "airflow_executor_running_tasks", "kube_deployment_status_replicas_available", "airflow_platform_oldest_dag_parse_seconds",
                       "airflow_dag_processing_import_errors"):
            assert metric in expressions

    def test_expressions_parse_in_promtool(self, dashboard, tmp_path):
        """Every panel query is valid PromQL: promtool checks them as recording rules."""
        rules = [{"record": f"dashboard:panel{p['id']}:{t['refId'].lower()}", "expr": t["expr"]} for p in dashboard["panels"] for t in p["targets"]]
        path = tmp_path / "dashboard.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_queries_use_the_rules_metric_names(self, dashboard):
        """The dashboard reads the same Airflow metric names the alert rules use (the OTEL path)."""
        used = set(re.findall(r"\bairflow_[a-z0-9_]+", " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])))
        in_rules = set(re.findall(r"\bairflow_[a-z0-9_]+", json.dumps(alerting.rule_groups(typed_config(stack_config("prod"))))))
        assert used - in_rules <= {"airflow_executor_queued_tasks", "airflow_executor_running_tasks", "airflow_executor_open_slots"}
