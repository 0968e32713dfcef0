"""RDS: encrypted with our key, private, backed up, Multi-AZ and protected in prod, Performance Insights on, TLS
forced by the parameter group, and CPU, storage and connection alarms that notify someone."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .model import Resource, Stack, known, policy

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# The parameter that makes the engine refuse connections without TLS, and the value that does.
TLS_PARAMETERS = {"rds.force_ssl": ("1",), "require_secure_transport": ("1", "ON", "on")}


@policy("rds-storage-encrypted", types=(INSTANCE,), severity="high", checkov=("CKV_AWS_16",),
        description="RDS instances encrypt their storage with a customer-managed KMS key.",
        remediation="Set storage_encrypted=True and kms_key_id to a key of this stack (MetadataDatabase does); an existing "
                    "instance is encrypted by restoring an encrypted snapshot copy.")
def storage_encrypted(db: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if known(db.props.get("storageEncrypted")) is not True:
        yield f"instance {db.name} stores data unencrypted"
    elif not known(db.props.get("kmsKeyId")):
        yield f"instance {db.name} is encrypted with the AWS-managed aws/rds key: no kms_key_id"


@policy("rds-not-publicly-accessible", types=(INSTANCE,), severity="critical", checkov=("CKV_AWS_17",),
        description="RDS instances have no public endpoint.",
        remediation="Set publicly_accessible=False and keep the instance in private subnets; Airflow reaches it inside the VPC.")
def not_public(db: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if known(db.props.get("publiclyAccessible")) is True:
        yield f"instance {db.name} is publicly accessible"


@policy("rds-backup-retention", types=(INSTANCE,), severity="medium", checkov=("CKV_AWS_133",),
        description="RDS instances keep automated backups long enough to recover from a bad week.",
        remediation="Set database.backupRetentionDays (backup_retention_period) to at least the configured minimum.",
        config_schema={"minimumDays": {"type": "integer", "minimum": 1, "maximum": 35, "default": 7,
                                       "description": "Fewest days of automated backups."}})
def backup_retention(db: Resource, _: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    days = known(db.props.get("backupRetentionPeriod")) or 0
    if days < config["minimumDays"]:
        yield f"instance {db.name} keeps backups {int(days)} days, fewer than {config['minimumDays']}"


@policy("rds-multi-az", types=(INSTANCE,), severity="high", checkov=("CKV_AWS_157",),
        description="RDS instances keep a standby in a second zone.",
        remediation="Set database.multiAz to true (prod's default): a zone outage or a patch then fails over in about a minute "
                    "instead of stopping Airflow.")
def multi_az(db: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if known(db.props.get("multiAz")) is not True:
        yield f"instance {db.name} runs in one zone"


@policy("rds-deletion-protection", types=(INSTANCE,), severity="high", checkov=("CKV_AWS_293",),
        description="RDS instances cannot be deleted by an update.",
        remediation="Set deletion_protection=True (prod's default), so removing the instance takes a deliberate change first.")
def deletion_protection(db: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if known(db.props.get("deletionProtection")) is not True:
        yield f"instance {db.name} can be deleted"


@policy("rds-performance-insights", types=(INSTANCE,), severity="medium", checkov=("CKV_AWS_353", "CKV_AWS_354"),
        description="RDS instances record Performance Insights, encrypted with a customer-managed key.",
        remediation="Set performance_insights_enabled=True and performance_insights_kms_key_id (MetadataDatabase uses the "
                    "database's key): slow scheduler queries are found there.")
def performance_insights(db: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if known(db.props.get("performanceInsightsEnabled")) is not True:
        yield f"instance {db.name} has Performance Insights off"
    elif not known(db.props.get("performanceInsightsKmsKeyId")):
        yield f"instance {db.name} encrypts Performance Insights with the AWS-managed key"


def parameter_groups(db: Resource, stack: Stack) -> tuple[Any, list[Resource]]:
    """The name of the instance's parameter group, and that group when the stack declares it."""
    name = known(db.props.get("parameterGroupName"))
    return name, [g for g in stack.of_type(PARAMETER_GROUP)
                  if g.urn in db.property_dependencies.get("parameterGroupName", ()) or (name and known(g.props.get("name")) == name)]


def parameters(group: Resource) -> dict[Any, str]:
    """A parameter group's parameters, name -> value as text."""
    return {known(p.get("name")): str(known(p.get("value"))) for p in as_list(group.props.get("parameters"))}


@policy("rds-tls-enforced", types=(INSTANCE,), needs_stack=True, severity="high",
        description="RDS instances refuse connections without TLS.",
        remediation="Give the instance a parameter group of this stack that sets rds.force_ssl=1 (PostgreSQL) or "
                    "require_secure_transport=1 (MySQL); the default group cannot.")
def tls_enforced(db: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    name, groups = parameter_groups(db, stack)
    if not groups:
        yield f"instance {db.name} uses {name or 'the default parameter group'}, which does not force TLS"
        return
    for group in groups:
        values = parameters(group)
        if not any(values.get(parameter) in allowed for parameter, allowed in TLS_PARAMETERS.items()):
            yield f"instance {db.name}'s parameter group {group.name} does not set rds.force_ssl=1"


def _alarms_on(db: Resource, stack: Stack) -> list[Resource]:
    identifier = known(db.props.get("identifier"))
    linked = stack.pointing_at(db, (ALARM,), "dimensions") + [
        a for a in stack.of_type(ALARM) if identifier and known((known(a.props.get("dimensions")) or {}).get("DBInstanceIdentifier")) == identifier]
    return [a for a in {a.urn: a for a in linked}.values() if known(a.props.get("namespace")) == "AWS/RDS"]


@policy("rds-alarms-with-actions", types=(INSTANCE,), needs_stack=True, severity="high", checkov=("CKV_AWS_319",),
        description="Each RDS instance has CPU, free storage and connection alarms, and each alarm notifies someone.",
        remediation="Keep the Alarms component on (it alarms on CPUUtilization, FreeStorageSpace and DatabaseConnections "
                    "into an SNS topic) with actions enabled and alarm actions set.",
        config_schema={"metrics": {"type": "array", "items": {"type": "string"},
                                   "default": ["CPUUtilization", "FreeStorageSpace", "DatabaseConnections"],
                                   "description": "The AWS/RDS metrics each instance must alarm on."}})
def alarms(db: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    found = _alarms_on(db, stack)
    covered = {known(a.props.get("metricName")) for a in found}
    missing = [m for m in config["metrics"] if m not in covered]
    if missing:
        yield f"instance {db.name} has no alarm on {', '.join(missing)}"
    silent = [a.name for a in found if known(a.props.get("actionsEnabled")) is False or not as_list(a.props.get("alarmActions"))]
    if silent:
        yield f"instance {db.name}'s alarm{'s' * (len(silent) > 1)} {', '.join(silent)} notif{'y' if len(silent) > 1 else 'ies'} nobody"
