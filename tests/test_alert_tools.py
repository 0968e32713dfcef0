"""Tests the generated alert rules and Alertmanager routes with the real tools: promtool (rule checks and the rule unit
tests of tests/alerts/airflow_alerts_test.yaml) and amtool (config checks and the routing table of tests/alerts/routes.yaml)."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import task_metrics_exporter as exporter
from components.alerting import RECEIVER_SECRETS_DIR, SLACK_API, alertmanager_config, rule_groups
from components.config import SECRET_KEYS, PlatformConfig
from tests.conftest import stack_config, typed_config
from tools.otlp_prometheus import metric_name
from tools.upstream import airflow_metrics

ALERTS_DIR = Path(__file__).resolve().parent / "alerts"
UNIT_TESTS = ALERTS_DIR / "airflow_alerts_test.yaml"
ROUTES = yaml.safe_load((ALERTS_DIR / "routes.yaml").read_text())
RECEIVER_SECRETS = ("slackBotToken", "pagerDutyRoutingKey", "watchdogToken")
TOOLS = {"promtool": "prometheus", "amtool": "prometheus-alertmanager"}  # tool -> Debian package
PROD_ALERTS = ["AirflowSchedulerDown", "AirflowTriggererDown", "AirflowDagProcessorDown", "AirflowSchedulerReplicasMissing",
               "AirflowTriggererReplicasMissing", "AirflowSchedulerLoopSlow",
               "AirflowNoCeleryWorker", "AirflowTaskQueuedTooLong", "AirflowWorkersBelowMinimum", "AirflowWorkerPodsPending",
               "AirflowTaskPodsPending", "KarpenterCannotLaunchNodes", "KarpenterNodePoolAtLimit", "AirflowDagParseSlow",
               "AirflowDagImportErrors", "AirflowDagSyncFailing", "AirflowTeamTaskFailures", "AirflowTaskMetricsExporterDown"]
METRIC = re.compile(r"\b(?:airflow|kube|karpenter|operator)_[a-z0-9_]+")
# The Karpenter 1.14.1 metrics the rules read, as its metrics reference lists them (aws/karpenter-provider-aws,
# website/content/en/v1.14/reference/metrics.md; components/node_alerts.py cites the code of each).
KARPENTER_METRICS = {"karpenter_nodeclaims_disrupted_total", "karpenter_nodes_created_total", "karpenter_nodepools_usage",
                     "karpenter_nodepools_limit", "operator_nodepool_status_condition_count"}
LABEL = re.compile(r'(\w+)="([^"]*)"')
# The Airflow pod each metric's process runs in (the scheduler runs the executor), as the unit tests' instances name it.
METRIC_PODS = {"airflow_scheduler_": "scheduler", "airflow_executor_": "scheduler", "airflow_triggerer_": "triggerer",
               "airflow_dag_processor_": "dag-processor", "airflow_dag_processing_": "dag-processor"}


class _NoAliases(yaml.SafeDumper):
    """Writes shared objects out in full, as the JSON Pulumi hands to Helm does (no YAML anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def platform_config(stack: str, secrets: tuple[str, ...] = (), alerting: dict[str, Any] | None = None,
                    workers: dict[str, Any] | None = None, replicas: dict[str, Any] | None = None) -> PlatformConfig:
    """The typed config of a stack file with some secrets set (as `{"secure": ...}`) and some keys changed."""
    config = stack_config(stack)
    for key in secrets:
        config[f"airflow-platform:{key}"] = {"secure": "v1:anything"}
    if alerting:
        config.setdefault("airflow-platform:alerting", {}).update(alerting)
    if workers:
        config["airflow-platform:airflow"].setdefault("workers", {}).update(workers)
    if replicas:
        config["airflow-platform:airflow"].setdefault("replicas", {}).update(replicas)
    return typed_config(config)


def write_yaml(path: Path, document: Any) -> Path:
    path.write_text(yaml.dump(document, Dumper=_NoAliases, sort_keys=False, width=10_000))
    return path


def run(tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not on PATH: install it (Debian: apt-get install {TOOLS[tool]}; `make test` does it as root)")
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def promtool_unit_tests(groups: list[dict[str, Any]], directory: Path) -> subprocess.CompletedProcess:
    """`promtool test rules` on a copy of the unit-test file, with `groups` as the rules.yml beside it."""
    write_yaml(directory / "rules.yml", {"groups": groups})
    shutil.copy(UNIT_TESTS, directory / UNIT_TESTS.name)
    return run("promtool", "test", "rules", UNIT_TESTS.name, cwd=directory)


def failed_alerts(result: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"alertname: (\w+), time:", output(result)))


def minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)m", duration)
    assert match, f"durations in the unit tests are whole minutes, not {duration!r}"
    return int(match.group(1))


def credential_fields(node: Any) -> list[tuple[str, Any]]:
    """Every (key, value) of the config whose key names a credential, inline or as a file."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") or key in {"api_key", "routing_key", "service_key", "credentials", "bearer_token",
                                                "password", "auth_password", "token"}:
                found.append((key, value))
            found.extend(credential_fields(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(credential_fields(item))
    return found


def secret_literals(text: str) -> list[str]:
    """The keys of SECRET_KEYS whose example value appears in the text."""
    return [key for key, example in SECRET_KEYS.items() if example in text]


def otel_metric_names() -> set[str]:
    """Airflow's metrics as the collector's Prometheus exporter names them (tools/otlp_prometheus.py): the OTLP name is
    airflow.<stat>, without a unit; counters are monotonic sums, gauges and timers gauges."""
    names = set()
    for line in airflow_metrics().read_text().splitlines():
        stat, kind, _ = line.split("\t", 2)
        if "<" not in stat:
            names.add(metric_name(f"airflow.{stat}", monotonic_sum=kind == "counter", gauge=kind != "counter"))
    return names


def exporter_metric_names() -> set[str]:
    """The task metrics exporter's metrics as the collector names them: three gauges and the heartbeat, a monotonic sum."""
    return {metric_name(exporter.FAILED_TASKS_OTLP, gauge=True),
            metric_name(exporter.OLDEST_QUEUED_OTLP, exporter.OLDEST_QUEUED_UNIT, gauge=True),
            metric_name(exporter.PARSE_AGE_OTLP, exporter.PARSE_AGE_UNIT, gauge=True),
            metric_name(exporter.HEARTBEAT_OTLP, monotonic_sum=True)}


def series_labels(series: str) -> tuple[str, dict[str, str]]:
    """A unit test's series notation split into the metric name and its labels."""
    name, _, rest = series.partition("{")
    return name, dict(LABEL.findall(rest))


@pytest.fixture(scope="module")
def prod() -> PlatformConfig:
    return typed_config(stack_config("prod"))


@pytest.fixture(scope="module")
def unit_tests() -> dict[str, Any]:
    return yaml.safe_load(UNIT_TESTS.read_text())


@pytest.fixture(scope="module")
def routed_prod(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """The prod stack's Alertmanager config with every receiver secret set, written for amtool."""
    config = alertmanager_config(platform_config("prod", RECEIVER_SECRETS))
    return write_yaml(tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml", config), config


class TestToolsInstalled:
    """Tests that promtool and amtool are installed, so these tests cannot pass without them."""

    @pytest.mark.parametrize("tool", list(TOOLS), ids=list(TOOLS))
    def test_tool_on_path(self, tool):
        """The tool is on PATH; a missing tool fails (never skips) with how to install it."""
        assert shutil.which(tool) is not None, (
            f"{tool} is not on PATH: the alerting tests run it for real. Install it (Debian: apt-get install {TOOLS[tool]}; "
            "`make test` does it as root).")


class TestRuleFiles:
    """Tests the generated rule files with promtool check rules."""

    @pytest.mark.parametrize("stack, changes, count", [("dev", {}, 16), ("prod", {}, 18), ("dev", {"minReplicas": 0}, 15)],
                             ids=["dev", "prod", "dev-scale-to-zero"])
    def test_rules_pass_promtool(self, tmp_path, stack, changes, count):
        """promtool accepts the stack's rule file and counts every generated rule (no replicas alerts with one of each, as
        in dev; no minimum alert when workers scale to 0)."""
        groups = rule_groups(platform_config(stack, workers=changes))
        assert sum(len(group["rules"]) for group in groups) == count
        path = write_yaml(tmp_path / "rules.yml", {"groups": groups})
        result = run("promtool", "check", "rules", str(path))
        assert result.returncode == 0, output(result)
        assert re.findall(r"SUCCESS: (\d+) rules found", result.stdout) == [str(count)]

    def test_prod_has_every_alert(self, prod):
        """The prod rule file holds the 19 platform alerts, each once."""
        assert [rule["alert"] for group in rule_groups(prod) for rule in group["rules"]] == PROD_ALERTS

    @pytest.mark.parametrize("alert, field, breakage, message", [
        ("AirflowSchedulerDown", "expr", lambda expr: expr.replace("[5m]))", "[5m])", 1),
         "could not parse expression: 1:68: parse error: unclosed left parenthesis"),
        ("AirflowDagSyncFailing", "expr", lambda expr: expr.replace("changes(", "chnages("),
         'unknown function with name "chnages"'),
        ("AirflowSchedulerLoopSlow", "annotations", lambda annotations: {**annotations, "description": annotations["description"].replace("humanize", "humanise")},
         'function "humanise" not defined'),
    ], ids=["unbalanced-parenthesis", "unknown-function", "unknown-template-function"])
    def test_broken_rule_fails(self, tmp_path, prod, alert, field, breakage, message):
        """A broken expression or annotation template in a copy of the prod rules fails promtool check rules, naming the rule."""
        groups = copy.deepcopy(rule_groups(prod))
        [rule] = [r for group in groups for r in group["rules"] if r["alert"] == alert]
        rule[field] = breakage(rule[field])
        result = run("promtool", "check", "rules", str(write_yaml(tmp_path / "rules.yml", {"groups": groups})))
        assert result.returncode == 1
        assert f'"{alert}"' in result.stderr and message in result.stderr


class TestRuleUnitTests:
    """Tests the prod rules' behaviour with promtool test rules (tests/alerts/airflow_alerts_test.yaml)."""

    def test_unit_tests_pass(self, tmp_path, prod):
        """Every unit test passes against the rules generated for the prod stack."""
        result = promtool_unit_tests(rule_groups(prod), tmp_path)
        assert result.returncode == 0, output(result)
        assert "SUCCESS" in result.stdout

    def test_rule_file_is_the_generated_one(self, unit_tests):
        """The unit tests read exactly rules.yml, the file the tests write from rule_groups()."""
        assert unit_tests["rule_files"] == ["rules.yml"]

    @pytest.mark.parametrize("alert", PROD_ALERTS)
    def test_alert_fires_only_after_its_for_period(self, unit_tests, prod, alert):
        """A test group shows the alert absent one evaluation before it fires and firing after at least its `for`."""
        [rule] = [r for group in rule_groups(prod) for r in group["rules"] if r["alert"] == alert]
        shown = []
        for group in unit_tests["tests"]:
            expected = {minutes(c["eval_time"]): c["exp_alerts"] for c in group["alert_rule_test"] if c["alertname"] == alert}
            firing = sorted(t for t, alerts_then in expected.items() if alerts_then)
            if firing and expected.get(firing[0] - 1) == []:
                shown.append((group["name"], firing[0]))
        assert shown, f"no test group shows {alert} absent just before it fires"
        assert all(first >= minutes(rule["for"]) for _, first in shown)

    @pytest.mark.parametrize("alert", PROD_ALERTS)
    def test_alert_has_a_silent_test(self, unit_tests, prod, alert):
        """A test group feeds every metric the alert reads and expects it silent at three times or more, past its `for`."""
        [rule] = [r for group in rule_groups(prod) for r in group["rules"] if r["alert"] == alert]
        needed = set(METRIC.findall(rule["expr"]))
        silent = []
        for group in unit_tests["tests"]:
            checks = [c for c in group["alert_rule_test"] if c["alertname"] == alert]
            fed = {series["series"].split("{")[0] for series in group["input_series"]}
            if len(checks) >= 3 and all(c["exp_alerts"] == [] for c in checks) and needed <= fed \
                    and max(minutes(c["eval_time"]) for c in checks) > minutes(rule["for"]):
                silent.append(group["name"])
        assert silent, f"no test group keeps {alert} silent on healthy series"

    def test_series_are_the_rules_metrics(self, unit_tests, prod):
        """Every input series is a metric the rules read, so no test is silent because of a misspelt name."""
        in_rules = set(METRIC.findall(" ".join(r["expr"] for group in rule_groups(prod) for r in group["rules"])))
        fed = {series["series"].split("{")[0] for group in unit_tests["tests"] for series in group["input_series"]}
        assert fed == in_rules

    def test_series_carry_the_labels_prometheus_stores(self, unit_tests):
        """Each input series has its source's job and instance: an Airflow process's own (honorLabels on the collector's
        ServiceMonitor; instance <pod>:<pid>, from a pod of the component that emits the metric) or the exporter's, with
        the collector pod that exported it; kube-state-metrics', with the object's namespace (Airflow's or the task
        namespace); or the Karpenter controller's, scraped by its chart's ServiceMonitor (Service karpenter, port 8080)."""
        collector_pod = re.compile(r"otel-collector-[a-z0-9]+-[a-z0-9]+")
        task_namespace = typed_config(stack_config("prod")).airflow.task_pods.namespace
        for group in unit_tests["tests"]:
            for series in group["input_series"]:
                name, labels = series_labels(series["series"])
                if name.startswith("kube_"):
                    assert labels["job"] == "kube-state-metrics" and labels["namespace"] in {"airflow", task_namespace}, series
                    assert re.fullmatch(r"[\d.]+:8080", labels["instance"]), series
                    continue
                if name in KARPENTER_METRICS:
                    assert (labels["job"], labels["namespace"]) == ("karpenter", "karpenter"), series
                    assert re.fullmatch(r"[\d.]+:8080", labels["instance"]) and re.fullmatch(r"karpenter-[a-z0-9]+-[a-z0-9]+", labels["pod"]), series
                    continue
                if name in exporter_metric_names():
                    job, instance = exporter.SERVICE_NAME, rf"{exporter.SERVICE_NAME}-[a-z0-9]+-[a-z0-9]+:\d+"
                else:
                    [pod] = [pod for prefix, pod in METRIC_PODS.items() if name.startswith(prefix)]
                    job, instance = "Airflow", rf"airflow-{pod}-[a-z0-9]+-[a-z0-9]+:\d+"  # Airflow's default otel_service
                assert (labels["job"], labels["namespace"]) == (job, "monitoring"), series
                assert re.fullmatch(instance, labels["instance"]) and collector_pod.fullmatch(labels["pod"]), series

    @pytest.mark.parametrize("changes, failing", [
        ({"alerting": {"queuedTaskSlaMinutes": 45}}, "AirflowTaskQueuedTooLong"),
        ({"alerting": {"queuedTaskSlaMinutes": 20}}, "AirflowTaskQueuedTooLong"),
        ({"alerting": {"schedulerLoopSeconds": 30}}, "AirflowSchedulerLoopSlow"),
        ({"alerting": {"dagParseSeconds": 300}}, "AirflowDagParseSlow"),
        ({"alerting": {"teamTaskFailuresPerHour": 10}}, "AirflowTeamTaskFailures"),
        ({"workers": {"minReplicas": 2}}, "AirflowWorkersBelowMinimum"),
        ({"replicas": {"scheduler": 3}}, "AirflowSchedulerReplicasMissing"),
        ({"replicas": {"triggerer": 1}}, "AirflowTriggererReplicasMissing"),
        ({"alerting": {"pendingPodMinutes": 11}}, "AirflowWorkerPodsPending,AirflowTaskPodsPending"),
    ], ids=["queued-sla-raised", "queued-sla-lowered", "loop-raised", "parse-raised", "team-failures-lowered", "min-workers-lowered",
            "schedulers-raised", "one-triggerer", "pending-raised"])
    def test_changed_threshold_fails(self, tmp_path, changes, failing):
        """Rules rebuilt with another threshold fail the unit tests of exactly the alerts that use it (with one triggerer
        there is no replicas alert, so its firing tests fail)."""
        result = promtool_unit_tests(rule_groups(platform_config("prod", **changes)), tmp_path)
        assert result.returncode == 1
        assert failed_alerts(result) == set(failing.split(","))

    @pytest.mark.parametrize("alert, old, new", [
        ("AirflowSchedulerReplicasMissing", "count(sum by (instance) (rate(airflow_scheduler_heartbeat_total[5m])) > 0)",
         "count(rate(airflow_scheduler_heartbeat_total[5m]) > 0)"),
        ("AirflowTriggererReplicasMissing", "count(sum by (instance) (rate(airflow_triggerer_heartbeat_total[5m])) > 0)",
         "count(sum by (instance) (rate(airflow_triggerer_heartbeat_total[5m])))"),
        ("AirflowTeamTaskFailures", "max by (team)", "sum by (team)"),
        ("AirflowTaskQueuedTooLong", "max by (dag_id) (airflow_platform_oldest_queued_task_seconds)",
         "max by (dag_id) (max_over_time(airflow_platform_oldest_queued_task_seconds[30m]))"),
        ("AirflowTaskMetricsExporterDown", " or vector(0))", ")"),
        ("AirflowWorkerPodsPending", ' and on (namespace, pod) kube_pod_owner{namespace="airflow", owner_kind="ReplicaSet", '
                                     'owner_name=~"airflow-worker-[a-z0-9]+"}', ""),
        ("KarpenterCannotLaunchNodes", " or (karpenter_nodes_created_total unless karpenter_nodes_created_total offset 30m)", ""),
    ], ids=["replicas-counting-series", "replicas-counting-flat-series", "team-failures-summed-over-instances",
            "queued-age-remembered", "exporter-gone-unnoticed", "pending-pods-of-any-owner", "first-node-of-a-zone-unseen"])
    def test_weakened_rule_fails(self, tmp_path, prod, alert, old, new):
        """Control: a plausible weaker expression fails the unit tests of exactly that alert: counting series instead of
        instances (one process on two collector pods), counting a stopped process's flat series, summing a team's gauge
        over an exporter restart, remembering a drained DAG's age, missing an exporter whose series are gone, counting
        every Pending pod of the namespace as a worker, or missing a node whose counter is born at its first increment."""
        groups = copy.deepcopy(rule_groups(prod))
        [rule] = [r for group in groups for r in group["rules"] if r["alert"] == alert]
        assert old in rule["expr"]
        rule["expr"] = rule["expr"].replace(old, new)
        result = promtool_unit_tests(groups, tmp_path)
        assert result.returncode == 1
        assert failed_alerts(result) == {alert}


class TestAlertmanagerConfig:
    """Tests the generated Alertmanager configuration with amtool check-config."""

    @pytest.mark.parametrize("stack, secrets, alerting, receivers", [
        ("dev", (), {}, 4),
        ("prod", (), {}, 6),
        ("prod", RECEIVER_SECRETS, {}, 6),
        ("prod", ("opsgenieApiKey",), {"criticalReceiver": "opsgenie"}, 6),
    ], ids=["dev-without-secrets", "prod-without-secrets", "prod-with-secrets", "prod-opsgenie"])
    def test_config_passes_amtool(self, tmp_path, stack, secrets, alerting, receivers):
        """amtool check-config accepts the config: one route tree, one inhibit rule, the receivers, no templates."""
        config = alertmanager_config(platform_config(stack, secrets, alerting))
        path = write_yaml(tmp_path / "alertmanager.yml", config)
        result = run("amtool", "check-config", str(path))
        assert result.returncode == 0, output(result)
        assert [line.strip() for line in result.stdout.splitlines() if line.strip()] == [
            f"Checking '{path}'  SUCCESS", "Found:", "- global config", "- route", "- 2 inhibit rules", f"- {receivers} receivers", "- 0 templates"]

    @pytest.mark.parametrize("breakage, message", [
        (lambda c: c["route"]["routes"].append({"receiver": "team-nobody", "matchers": ['team="nobody"']}),
         'undefined receiver "team-nobody" used in route'),
        (lambda c: c["receivers"].append({"name": "platform"}), 'notification config name "platform" is not unique'),
        (lambda c: c["route"]["routes"][1].update(matchers=['severity=="critical"']), 'matcher value contains unescaped double quote: ="critical"'),
    ], ids=["undefined-receiver", "duplicate-receiver", "malformed-matcher"])
    def test_broken_config_fails(self, tmp_path, breakage, message):
        """A broken copy of the prod config fails amtool check-config with the reason."""
        config = copy.deepcopy(alertmanager_config(platform_config("prod", RECEIVER_SECRETS)))
        breakage(config)
        result = run("amtool", "check-config", str(write_yaml(tmp_path / "alertmanager.yml", config)))
        assert result.returncode == 1
        assert message in result.stdout


class TestRoutes:
    """Tests which receivers Alertmanager picks, with amtool config routes test on the prod config with secrets."""

    @pytest.mark.parametrize("row", ROUTES, ids=[row["id"] for row in ROUTES])
    def test_route(self, routed_prod, row):
        """amtool resolves the row's labels to exactly the row's receivers, in order."""
        path, _ = routed_prod
        result = run("amtool", "config", "routes", "test", f"--config.file={path}", *[f"{k}={v}" for k, v in row["labels"].items()])
        assert result.returncode == 0, output(result)
        assert result.stdout.strip() == ",".join(row["receivers"])

    def test_table_reaches_every_receiver(self, routed_prod):
        """The table reaches every receiver the config defines (null takes the stack's InfoInhibitor)."""
        _, config = routed_prod
        reached = {receiver for row in ROUTES for receiver in row["receivers"]}
        assert reached == {r["name"] for r in config["receivers"]}
        assert reached == {"critical", "platform", "watchdog", "team-analytics", "team-finance", "null"}

    def test_critical_copy_needs_continue(self, tmp_path, routed_prod):
        """Control: without `continue` on the critical route, a team's critical alert no longer reaches its channel."""
        _, config = routed_prod
        broken = copy.deepcopy(config)
        [critical] = [route for route in broken["route"]["routes"] if route["receiver"] == "critical"]
        del critical["continue"]
        path = write_yaml(tmp_path / "alertmanager.yml", broken)
        result = run("amtool", "config", "routes", "test", f"--config.file={path}", "severity=critical", "team=analytics")
        assert result.stdout.strip() == "critical"


class TestNoCredentialInConfig:
    """Tests that the Alertmanager config holds paths to credentials, never a credential."""

    @pytest.mark.parametrize("secrets, alerting, files", [
        (RECEIVER_SECRETS, {}, {("credentials_file", "slack-bot-token"), ("routing_key_file", "pagerduty-routing-key"),
                                ("credentials_file", "watchdog-token")}),
        (("opsgenieApiKey",), {"criticalReceiver": "opsgenie"}, {("api_key_file", "opsgenie-api-key")}),
    ], ids=["prod-with-secrets", "prod-opsgenie"])
    def test_credentials_are_files_in_the_mounted_secret(self, tmp_path, secrets, alerting, files):
        """No SECRET_KEYS example is in the YAML, and every credential is a *_file under the receivers' Secret mount."""
        config = alertmanager_config(platform_config("prod", secrets, alerting))
        text = write_yaml(tmp_path / "alertmanager.yml", config).read_text()
        assert secret_literals(text) == []
        fields = credential_fields(config)
        assert {(key, value) for key, value in fields} == {(key, f"{RECEIVER_SECRETS_DIR}/{name}") for key, name in files}
        assert all(value.startswith("/etc/alertmanager/secrets/alertmanager-receivers/") for _, value in fields)

    def test_slack_posts_to_the_public_api(self, routed_prod):
        """Every Slack config posts to Slack's public chat.postMessage API (a URL, not a webhook credential)."""
        _, config = routed_prod
        slack = [c for receiver in config["receivers"] for c in receiver.get("slack_configs", [])]
        assert [(c["api_url"], c["channel"]) for c in slack] == [
            (SLACK_API, "#data-platform-alerts"), (SLACK_API, "#data-platform-alerts"), (SLACK_API, "#analytics-alerts"),
            (SLACK_API, "#finance-data-alerts")]

    def test_check_bites(self, tmp_path, routed_prod):
        """Control: a routing key written inline is accepted by amtool, but both checks above catch it."""
        _, config = routed_prod
        leaked = copy.deepcopy(config)
        [critical] = [r for r in leaked["receivers"] if r["name"] == "critical"]
        critical["pagerduty_configs"] = [{"routing_key": SECRET_KEYS["pagerDutyRoutingKey"], "severity": "critical"}]
        path = write_yaml(tmp_path / "alertmanager.yml", leaked)
        assert run("amtool", "check-config", str(path)).returncode == 0
        assert secret_literals(path.read_text()) == ["pagerDutyRoutingKey"]
        assert ("routing_key", SECRET_KEYS["pagerDutyRoutingKey"]) in credential_fields(leaked)


class TestMetricNames:
    """Tests that the rules read metric names emitted on the OTEL path: Airflow's (../shared/schemas/airflow-metrics.txt)
    and the task metrics exporter's (components/task_metrics_exporter.py), as tools/otlp_prometheus.py translates them."""

    def test_every_airflow_metric_is_emitted(self, prod):
        """Every airflow_* name in the rule expressions is a documented Airflow metric or one of the exporter's, converted
        as the collector names it."""
        used = set(re.findall(r"\bairflow_[a-z0-9_]+", " ".join(r["expr"] for group in rule_groups(prod) for r in group["rules"])))
        platform = {name for name in used if name.startswith("airflow_platform_")}
        assert used - platform == {"airflow_scheduler_heartbeat_total", "airflow_triggerer_heartbeat_total", "airflow_dag_processor_heartbeat_total",
                                   "airflow_scheduler_scheduler_loop_duration", "airflow_dag_processing_import_errors"}
        assert used - platform - otel_metric_names() == set()
        assert platform == exporter_metric_names() == {exporter.FAILED_TASKS, exporter.OLDEST_QUEUED, exporter.PARSE_AGE, exporter.HEARTBEAT}

    def test_karpenter_metrics_are_karpenter_1_14s(self, prod):
        """The rules read exactly the Karpenter metrics listed above, which its 1.14 metrics reference names (a misspelt
        name, or one of another Karpenter version, would leave an alert silent for ever)."""
        used = set(re.findall(r"\b(?:karpenter|operator)_[a-z0-9_]+", " ".join(r["expr"] for group in rule_groups(prod) for r in group["rules"])))
        assert used == KARPENTER_METRICS

    @pytest.mark.parametrize("otlp, unit, kind, name", [
        (exporter.FAILED_TASKS_OTLP, "", "gauge", exporter.FAILED_TASKS),
        (exporter.OLDEST_QUEUED_OTLP, exporter.OLDEST_QUEUED_UNIT, "gauge", exporter.OLDEST_QUEUED),
        (exporter.PARSE_AGE_OTLP, exporter.PARSE_AGE_UNIT, "gauge", exporter.PARSE_AGE),
        (exporter.HEARTBEAT_OTLP, "", "counter", exporter.HEARTBEAT),
    ], ids=["failed-tasks", "oldest-queued", "parse-age", "heartbeat"])
    def test_exporter_names(self, otlp, unit, kind, name):
        """The Prometheus names the rules use are the exporter's OTLP names translated (the unit as a suffix, _total on
        the counter), not names written by hand."""
        assert metric_name(otlp, unit, monotonic_sum=kind == "counter", gauge=kind == "gauge") == name

    @pytest.mark.parametrize("name", ["airflow_dagrun_dependency_check", "airflow_ti_successes_total", "airflow_executor_open_slots"],
                             ids=["dash-in-timer", "counter", "gauge"])
    def test_conversion(self, name):
        """The conversion turns . and - into _ and adds _total to counters only."""
        assert name in otel_metric_names()

    @pytest.mark.parametrize("name", ["airflow_scheduler_heartbeats_total", "airflow_scheduler_heartbeat",
                                      "airflow_dag_processing_import_errors_total", "airflow_ti_finish_analytics_daily_sales_load_orders_failed_total",
                                      "airflow_platform_oldest_queued_task", "airflow_platform_team_failed_tasks_total"],
                             ids=["made-up", "statsd-counter-form", "gauge-with-total", "legacy-name", "exporter-without-unit",
                                  "exporter-gauge-with-total"])
    def test_unknown_name_is_not_emitted(self, name):
        """Control: a made-up, StatsD-style or legacy name, or an exporter name without its unit or with a counter's
        suffix, is in neither set, so the check bites."""
        assert name not in otel_metric_names() | exporter_metric_names()
