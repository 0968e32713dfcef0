"""What the platform records for a later investigation: every flow of its VPC, the metadata DB's slow statements, and
who wrote or deleted what Airflow runs (the DAG bucket's object writes, in a trail).

The DAG bucket is the bucket that carries the DAG bucket tag (`purpose: airflow-dags`, set by DagStorage), as team
roles are the roles that carry the `team` tag (iam.py).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .model import Resource, Stack, Undecided, known, policy
from .rds import INSTANCE, parameter_groups, parameters
from .s3 import BUCKETS

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TRAIL = "aws:cloudtrail/trail:Trail"
SLOW_STATEMENTS = "log_min_duration_statement"
S3_ARN = re.compile(r"arn:[a-z-]+:s3:::(.*)")


def _flow_log_groups(flow_log: Resource, stack: Stack) -> list[Resource]:
    """The log groups of the stack a flow log delivers to: computed from them, or named by their ARN or name."""
    destination = str(known(flow_log.props.get("logDestination")) or "")
    names = {known(flow_log.props.get("logGroupName")), destination.partition(":log-group:")[2].removesuffix(":*") or None} - {None}
    linked = stack.sources(flow_log, "logDestination") + stack.sources(flow_log, "logGroupName")
    found = {g.urn: g for g in linked + [g for g in stack.of_type(LOG_GROUP) if known(g.props.get("name")) in names] if g.type == LOG_GROUP}
    return list(found.values())


@policy("vpc-flow-logs", types=(VPC, FLOW_LOG), needs_stack=True, severity="medium", checkov=("CKV2_AWS_11",),
        description="Every VPC of the stack has a flow log, and every flow log records all traffic (accepted and rejected) into a "
                    "log group of the stack that expires its logs and is encrypted with a KMS key.",
        remediation="Keep the FlowLogs component (traffic_type ALL into its own log group, with network.flowLogRetentionDays and "
                    "its own key); for a VPC of another stack, give the flow log a log group this stack declares.")
def flow_logs(resource: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    if resource.type == VPC:
        if not stack.pointing_at(resource, (FLOW_LOG,), "vpcId"):
            yield f"VPC {resource.name} has no flow log"
        return
    traffic = known(resource.props.get("trafficType"))
    if traffic != "ALL":
        yield f"flow log {resource.name} records {traffic or 'unset'} traffic, not ALL"
    kind = known(resource.props.get("logDestinationType")) or "cloud-watch-logs"
    if kind != "cloud-watch-logs":
        yield f"flow log {resource.name} delivers to {kind}, not to a log group"
        return
    groups = _flow_log_groups(resource, stack)
    if not groups:
        yield f"flow log {resource.name} delivers to a log group this stack does not declare"
    for group in groups:
        if not known(group.props.get("retentionInDays")):
            yield f"flow log {resource.name}'s log group {group.name} keeps logs forever"
        if not known(group.props.get("kmsKeyId")):
            yield f"flow log {resource.name}'s log group {group.name} is not encrypted with a KMS key"


@policy("rds-slow-statement-logging", types=(INSTANCE,), needs_stack=True, severity="low", checkov=("CKV_AWS_129",),
        description="PostgreSQL instances log slow statements (log_min_duration_statement of 0 or more in a parameter group of the "
                    "stack) and export the postgresql log to a log group the stack declares.",
        remediation="Keep MetadataDatabase's parameter group (log_min_duration_statement from database.slowStatementMs), "
                    "enabled_cloudwatch_logs_exports with postgresql, and the log group /aws/rds/instance/<identifier>/postgresql "
                    "declared before the instance (a fixed identifier), or RDS creates it unencrypted and never expiring.")
def slow_statement_logging(db: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    if not str(known(db.props.get("engine")) or "").startswith("postgres"):
        return
    name, groups = parameter_groups(db, stack)
    if not groups:
        yield f"instance {db.name} uses {name or 'the default parameter group'}, which logs no slow statement"
    for group in groups:
        value = parameters(group).get(SLOW_STATEMENTS)
        if value is None:
            yield f"instance {db.name}'s parameter group {group.name} does not set {SLOW_STATEMENTS}"
        elif not re.fullmatch(r"\d+", value):
            yield f"instance {db.name}'s parameter group {group.name} sets {SLOW_STATEMENTS} to {value}, which logs no slow statement"
    if "postgresql" not in as_list(db.props.get("enabledCloudwatchLogsExports")):
        yield f"instance {db.name} does not export its postgresql log"
        return
    identifier = known(db.props.get("identifier"))
    expected = f"/aws/rds/instance/{identifier}/postgresql" if identifier else None
    if not any(known(g.props.get("name")) == expected for g in stack.of_type(LOG_GROUP)):
        where = expected or "/aws/rds/instance/<identifier>/postgresql (the identifier is generated)"
        yield f"instance {db.name} exports its postgresql log to {where}, which the stack does not declare"


def _bucket_name(bucket: Resource, stack: Stack) -> str:
    """The bucket's name: its own, or the one its settings resources were given (a generated name is known only there)."""
    name = known(bucket.props.get("bucket"))
    if not name:
        name = next((known(r.props.get("bucket")) for r in stack.resources if bucket.urn in r.property_dependencies.get("bucket", ())), None)
    if not name:
        raise Undecided()
    return name


def _path(arn: Any) -> Optional[str]:
    """bucket/key of an S3 ARN; None for anything else."""
    match = S3_ARN.fullmatch(str(known(arn)))
    return match.group(1) if match else None


def _advanced_selector_records_writes(selector: Any, target: str) -> bool:
    """Whether an advanced event selector records every write and delete of the objects whose path starts with `target`."""
    fields = {known(f.get("field")): f for f in as_list(known(selector).get("fieldSelectors"))}

    def values(field: str, operator: str) -> list[str]:
        return [str(v) for v in as_list(fields[field].get(operator))] if field in fields else []

    if values("eventCategory", "equals") != ["Data"] or "AWS::S3::Object" not in values("resources.type", "equals"):
        return False
    # Without a readOnly field both reads and writes are recorded; an eventName field records only the events it names.
    if ("readOnly" in fields and [v.lower() for v in values("readOnly", "equals")] != ["false"]) or "eventName" in fields:
        return False
    if "resources.ARN" not in fields:
        return True
    excluded = [p for p in map(_path, values("resources.ARN", "notStartsWiths") + values("resources.ARN", "notEquals")) if p is not None]
    if any(target.startswith(p) or p.startswith(target) for p in excluded):
        return False
    return any(p is not None and target.startswith(p) for p in map(_path, values("resources.ARN", "startsWiths")))


def _basic_selector_records_writes(selector: Any, target: str) -> bool:
    """The same for a basic event selector (data resources of type AWS::S3::Object)."""
    selector = known(selector)
    if (known(selector.get("readWriteType")) or "All") not in ("All", "WriteOnly"):
        return False
    return any(known(r.get("type")) == "AWS::S3::Object" and any(p is not None and target.startswith(p) for p in map(_path, as_list(r.get("values"))))
               for r in as_list(selector.get("dataResources")))


def _records_writes(trail: Resource, target: str) -> bool:
    return (any(_advanced_selector_records_writes(s, target) for s in as_list(trail.props.get("advancedEventSelectors")))
            or any(_basic_selector_records_writes(s, target) for s in as_list(trail.props.get("eventSelectors"))))


@policy("s3-dag-bucket-audited", types=BUCKETS, needs_stack=True, severity="high", checkov=("CKV_AWS_35", "CKV_AWS_36"),
        description="The DAG bucket's object writes and deletes under the prefixes Airflow loads are recorded by a trail of the stack "
                    "that validates and encrypts its log files, so every change to what Airflow runs names who made it.",
        remediation="Keep the DagAudit component: a trail with an advanced event selector on AWS::S3::Object data events, readOnly "
                    "false, resources.ARN starting with arn:aws:s3:::<DAG bucket>/teams/ and /shared/, log file validation on and a "
                    "KMS key.",
        config_schema={"bucketTag": {"type": "string", "default": "purpose", "description": "The tag key that marks the DAG bucket."},
                       "bucketTagValue": {"type": "string", "default": "airflow-dags", "description": "Its value on the DAG bucket."},
                       "prefixes": {"type": "array", "items": {"type": "string"}, "default": ["teams/", "shared/"],
                                    "description": "The key prefixes whose writes must be recorded."}})
def dag_bucket_audited(bucket: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    if known((known(bucket.props.get("tags")) or {}).get(config["bucketTag"])) != config["bucketTagValue"]:
        return
    name = _bucket_name(bucket, stack)
    trails = [t for t in stack.of_type(TRAIL) if known(t.props.get("enableLogging")) is not False]
    covering = {t.urn: t for prefix in config["prefixes"] for t in trails if _records_writes(t, f"{name}/{prefix}")}
    uncovered = [p for p in config["prefixes"] if not any(_records_writes(t, f"{name}/{p}") for t in trails)]
    if uncovered:
        yield f"DAG bucket {bucket.name}: no trail of the stack records the writes and deletes under {', '.join(uncovered)}"
    for trail in covering.values():
        if known(trail.props.get("enableLogFileValidation")) is not True:
            yield f"DAG bucket {bucket.name}: trail {trail.name} does not validate its log files"
        if not known(trail.props.get("kmsKeyId")):
            yield f"DAG bucket {bucket.name}: trail {trail.name} does not encrypt its log files with a KMS key"
