"""Tests the Alarms component: DB alarms with thresholds from config, notifying the environment's encrypted topic."""

from __future__ import annotations

import json

import pytest

from components.alarms import db_alarms
from components.config import AlarmsConfig

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


class TestThresholds:
    """Tests the conversion of config units into CloudWatch's."""

    def test_defaults_on_a_medium_class(self):
        """Default thresholds in CloudWatch units; connections relative to db.t4g.medium's max_connections (450)."""
        alarms = {a.key: (a.metric, a.statistic, a.comparison, a.threshold) for a in db_alarms(AlarmsConfig(), "db.t4g.medium")}
        assert alarms == {
            "cpu": ("CPUUtilization", "Average", "GreaterThanThreshold", 80),
            "free-storage": ("FreeStorageSpace", "Minimum", "LessThanThreshold", 5 * 1024**3),
            "connections": ("DatabaseConnections", "Maximum", "GreaterThanThreshold", 360),
            "freeable-memory": ("FreeableMemory", "Minimum", "LessThanThreshold", 256 * 1024**2),
            "read-latency": ("ReadLatency", "Average", "GreaterThanThreshold", 0.02),
            "write-latency": ("WriteLatency", "Average", "GreaterThanThreshold", 0.02),
        }

    @pytest.mark.parametrize("instance_class, percent, threshold", [
        ("db.t4g.medium", 80, 360), ("db.r7g.large", 50, 901), ("db.r7g.4xlarge", 90, 4500)],
        ids=["t4g.medium-80", "r7g.large-50", "capped-90"])
    def test_connections_follow_the_class(self, instance_class, percent, threshold):
        """The connection threshold is the configured percentage of the class's max_connections."""
        [alarm] = [a for a in db_alarms(AlarmsConfig(connections_percent=percent), instance_class) if a.key == "connections"]
        assert alarm.threshold == threshold


class TestAlarmResources:
    """Tests the alarms as the prod stack declares them."""

    def test_six_alarms_on_the_prod_db(self, prod_plan):
        """Each alarm watches the prod instance and uses the stack's thresholds."""
        [db] = prod_plan.of_type("aws:rds/instance:Instance")
        alarms = {a.name.removeprefix("airflow-prod-alarms-db-"): a.inputs for a in prod_plan.of_type(METRIC_ALARM)}
        assert sorted(alarms) == ["connections", "cpu", "free-storage", "freeable-memory", "read-latency", "write-latency"]
        for inputs in alarms.values():
            assert inputs["dimensions"] == {"DBInstanceIdentifier": db.id}
            assert (inputs["namespace"], inputs["period"], inputs["evaluationPeriods"], inputs["datapointsToAlarm"]) == ("AWS/RDS", 60, 5, 5)
        assert alarms["cpu"]["threshold"] == 75
        assert alarms["free-storage"]["threshold"] == 20 * 1024**3
        assert alarms["freeable-memory"]["threshold"] == 1024 * 1024**2
        assert alarms["connections"]["threshold"] == 1441  # 80% of db.r7g.large's 1802

    def test_alarm_and_recovery_go_to_the_topic(self, prod_plan):
        """Every alarm notifies the environment's topic when it fires and when it recovers."""
        [topic] = prod_plan.of_type("aws:sns/topic:Topic")
        for alarm in prod_plan.of_type(METRIC_ALARM):
            assert (alarm.inputs["alarmActions"], alarm.inputs["okActions"]) == ([topic.outputs["arn"]], [topic.outputs["arn"]])
        assert prod_plan.outputs["alarmTopicArn"] == topic.outputs["arn"]

    def test_topic_encrypted_with_a_key_cloudwatch_may_use(self, prod_plan):
        """The topic is encrypted with the component's key, whose policy lets CloudWatch publish."""
        [topic] = prod_plan.of_type("aws:sns/topic:Topic")
        key = prod_plan.named("airflow-prod-alarms-key")
        assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
        [cloudwatch] = [s for s in json.loads(key.inputs["policy"])["Statement"] if s["Sid"] == "CloudWatchPublishes"]
        assert (cloudwatch["Principal"], cloudwatch["Action"]) == ({"Service": "cloudwatch.amazonaws.com"}, ["kms:Decrypt", "kms:GenerateDataKey*"])


class TestNotifications:
    """Tests who the alarm topic reaches."""

    def test_prod_topic_mails_the_oncall(self, prod_plan):
        """Each configured address gets an e-mail subscription to the environment's topic."""
        [topic] = prod_plan.of_type("aws:sns/topic:Topic")
        subscriptions = prod_plan.of_type("aws:sns/topicSubscription:TopicSubscription")
        assert [(s.inputs["topic"], s.inputs["protocol"], s.inputs["endpoint"]) for s in subscriptions] == [
            (topic.outputs["arn"], "email", "data-platform-oncall@example.com")]

    def test_paging_webhook_is_a_secret_subscription(self, plan_with):
        """alarmWebhookUrl subscribes a paging service over https; the URL (it holds a key) stays secret."""
        from components.config import SECRET_KEYS

        plan = plan_with("prod", {"airflow-platform:alarmWebhookUrl": {"secure": "v1:anything"}})
        [webhook] = [s for s in plan.of_type("aws:sns/topicSubscription:TopicSubscription") if s.inputs["protocol"] == "https"]
        assert (webhook.inputs["endpoint"], webhook.inputs["endpointAutoConfirms"]) == (SECRET_KEYS["alarmWebhookUrl"], True)
        assert webhook.secret_inputs == ["endpoint"]
        assert SECRET_KEYS["alarmWebhookUrl"] not in json.dumps(plan.to_json())

    @pytest.mark.parametrize("stack_fixture, enabled", [("dev_plan", False), ("prod_plan", True)], ids=["dev-quiet", "prod-notifies"])
    def test_notifications_switch(self, request, stack_fixture, enabled):
        """A test stack can keep its alarms from notifying anyone; prod's notify."""
        plan = request.getfixturevalue(stack_fixture)
        assert {a.inputs["actionsEnabled"] for a in plan.of_type(METRIC_ALARM)} == {enabled}
