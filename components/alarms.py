"""Alarms: the environment's SNS topic and who is subscribed to it, and CloudWatch alarms on the metadata DB that
notify it on alarm and on recovery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components import instance_classes, kms
from components.config import AlarmsConfig

_GIB = 1024**3
_MIB = 1024**2


@dataclass(frozen=True)
class DbAlarm:
    """One alarm on an AWS/RDS metric, its threshold in the metric's own unit."""

    key: str
    metric: str
    statistic: str
    comparison: str
    threshold: float
    description: str


def db_alarms(thresholds: AlarmsConfig, instance_class: str) -> list[DbAlarm]:
    """The DB alarms, thresholds converted from the config's units to CloudWatch's (bytes, seconds, counts)."""
    max_connections = instance_classes.max_connections(instance_class)
    connections = max_connections * thresholds.connections_percent // 100
    return [
        DbAlarm("cpu", "CPUUtilization", "Average", "GreaterThanThreshold", thresholds.cpu_percent,
                f"DB CPU above {thresholds.cpu_percent}%"),
        DbAlarm("free-storage", "FreeStorageSpace", "Minimum", "LessThanThreshold", thresholds.free_storage_gib * _GIB,
                f"DB free storage below {thresholds.free_storage_gib} GiB"),
        DbAlarm("connections", "DatabaseConnections", "Maximum", "GreaterThanThreshold", connections,
                f"DB connections above {thresholds.connections_percent}% of max_connections ({connections} of {max_connections})"),
        DbAlarm("freeable-memory", "FreeableMemory", "Minimum", "LessThanThreshold", thresholds.freeable_memory_mib * _MIB,
                f"DB freeable memory below {thresholds.freeable_memory_mib} MiB"),
        DbAlarm("read-latency", "ReadLatency", "Average", "GreaterThanThreshold", thresholds.read_latency_ms / 1000,
                f"DB read latency above {thresholds.read_latency_ms} ms"),
        DbAlarm("write-latency", "WriteLatency", "Average", "GreaterThanThreshold", thresholds.write_latency_ms / 1000,
                f"DB write latency above {thresholds.write_latency_ms} ms"),
    ]


@dataclass
class AlarmsArgs:
    thresholds: AlarmsConfig
    instance_class: str
    db_identifier: pulumi.Input[str]
    partition: str
    account_id: str
    protect: bool
    # A paging service's https endpoint (for example PagerDuty's CloudWatch integration URL): it holds a key.
    webhook_url: Optional[pulumi.Output[str]] = None


class Alarms(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlarmsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Alarms", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key = kms.customer_managed_key(name, "Alarm topic encryption", self, args.protect, kms.Account(args.partition, args.account_id), [
            # CloudWatch publishes to the encrypted topic, so it must be able to use the key.
            kms.to_service("CloudWatchPublishes", "cloudwatch.amazonaws.com", ["kms:Decrypt", "kms:GenerateDataKey*"])])
        topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=key.arn, opts=child)
        self.topic_arn = topic.arn
        cfg = args.thresholds
        for index, address in enumerate(cfg.email_subscriptions):
            aws.sns.TopicSubscription(f"{name}-email-{index}", topic=topic.arn, protocol="email", endpoint=address, opts=child)
        if args.webhook_url is not None:
            aws.sns.TopicSubscription(f"{name}-webhook", topic=topic.arn, protocol="https", endpoint=pulumi.Output.secret(args.webhook_url),
                                      # Paging services confirm the subscription themselves.
                                      endpoint_auto_confirms=True, opts=child)
        for alarm in db_alarms(cfg, args.instance_class):
            aws.cloudwatch.MetricAlarm(
                f"{name}-db-{alarm.key}",
                alarm_description=alarm.description,
                namespace="AWS/RDS",
                metric_name=alarm.metric,
                dimensions={"DBInstanceIdentifier": args.db_identifier},
                statistic=alarm.statistic,
                comparison_operator=alarm.comparison,
                threshold=alarm.threshold,
                period=cfg.period_seconds,
                evaluation_periods=cfg.evaluation_periods,
                datapoints_to_alarm=cfg.evaluation_periods,
                # A database that stops reporting is as worrying as one that reports trouble.
                treat_missing_data="breaching",
                actions_enabled=cfg.notifications_enabled,
                alarm_actions=[topic.arn],
                ok_actions=[topic.arn],
                opts=child,
            )
        self.register_outputs({"topicArn": self.topic_arn})
