"""Data at rest and in transit beyond S3 and RDS: log groups, SNS topics, the ElastiCache broker, Secrets Manager,
and the nodes' launch templates."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .model import Resource, Stack, known, policy

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SECRET = "aws:secretsmanager/secret:Secret"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def _true(value: Any) -> bool:
    """Booleans some resources take as strings ("true")."""
    value = known(value)
    return value is True or (isinstance(value, str) and value.lower() == "true")


@policy("cloudwatch-log-group-retention-and-kms", types=(LOG_GROUP,), severity="medium", checkov=("CKV_AWS_66", "CKV_AWS_158"),
        description="Log groups expire their logs and encrypt them with a customer-managed KMS key.",
        remediation="Set retention_in_days (cluster.logRetentionDays) and kms_key_id; a key's policy must let "
                    "logs.<region>.amazonaws.com use it.")
def log_groups(group: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if not known(group.props.get("retentionInDays")):
        yield f"log group {group.name} keeps logs forever"
    if not known(group.props.get("kmsKeyId")):
        yield f"log group {group.name} is not encrypted with a KMS key"


@policy("sns-topic-encrypted", types=(TOPIC,), severity="medium", checkov=("CKV_AWS_26",),
        description="SNS topics encrypt messages with a customer-managed KMS key.",
        remediation="Set kms_master_key_id to a key whose policy lets cloudwatch.amazonaws.com use it (Alarms does).")
def sns_encrypted(topic: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    key = known(topic.props.get("kmsMasterKeyId"))
    if not key or key == "alias/aws/sns":
        yield f"topic {topic.name} is not encrypted with a customer-managed key"


@policy("elasticache-encrypted", types=(REPLICATION_GROUP,), severity="high", checkov=("CKV_AWS_29", "CKV_AWS_30", "CKV_AWS_191"),
        description="ElastiCache replication groups encrypt at rest with a customer-managed key and in transit.",
        remediation="Set at_rest_encryption_enabled=True with kms_key_id, and transit_encryption_enabled=True (Broker does; "
                    "Celery connects with rediss://).")
def elasticache_encrypted(group: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if not _true(group.props.get("atRestEncryptionEnabled")) or not known(group.props.get("kmsKeyId")):
        yield f"replication group {group.name} is not encrypted at rest with a customer-managed key"
    if not _true(group.props.get("transitEncryptionEnabled")):
        yield f"replication group {group.name} accepts plaintext connections"


@policy("secretsmanager-secret-cmk", types=(SECRET,), severity="medium", checkov=("CKV_AWS_149",),
        description="Secrets Manager secrets are encrypted with a customer-managed KMS key.",
        remediation="Set kms_key_id to a key of this stack (AirflowAccess uses its secrets key), so reading a secret also "
                    "takes kms:Decrypt on that key.")
def secrets_cmk(secret: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if not known(secret.props.get("kmsKeyId")):
        yield f"secret {secret.name} uses the AWS-managed aws/secretsmanager key"


@policy("launch-template-imdsv2-encrypted-volumes", types=(LAUNCH_TEMPLATE,), severity="high", checkov=("CKV_AWS_79", "CKV_AWS_8"),
        description="Node launch templates require IMDSv2 (one hop) and encrypt every EBS volume.",
        remediation="Set metadata_options http_tokens 'required' with http_put_response_hop_limit 1 (pods use IRSA, not the "
                    "node's role), and encrypted 'true' with a kms_key_id on every block device mapping.")
def launch_templates(template: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if template.get("metadataOptions.httpTokens") != "required":
        yield f"launch template {template.name} allows IMDSv1"
    hops = template.get("metadataOptions.httpPutResponseHopLimit")
    if hops is None or hops > 1:
        yield f"launch template {template.name} lets pods reach the node's metadata (hop limit {'unset' if hops is None else int(hops)})"
    for mapping in as_list(template.props.get("blockDeviceMappings")):
        ebs = known(mapping.get("ebs")) or {}
        if not _true(ebs.get("encrypted")) or not known(ebs.get("kmsKeyId")):
            yield f"launch template {template.name} leaves {known(mapping.get('deviceName'))} unencrypted or on the default key"
