"""Tests the policies of what the platform records for an investigation on compliant and violating inputs, asserting the
exact messages: VPC flow logs of all traffic into an encrypted, expiring log group; the metadata DB's slow statements
logged and exported to a log group of the stack; the DAG bucket's writes and deletes recorded by a validated, encrypted
trail; with what each passes over, what it cannot decide during a preview, and how the DAG bucket is found."""

from __future__ import annotations

from typing import Any

import pytest

from components.audit import AUDITED_PREFIXES
from components.dag_storage import BUCKET_TAG
from policies.airflow_guard.catalog import BY_NAME
from policies.airflow_guard.engine import evaluate
from policies.airflow_guard.model import UNKNOWN, Resource
from tests.test_policy_karpenter import present
from tests.test_policy_rules import BUCKET, INSTANCE, KEY_ARN, messages, res

VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
TRAIL = "aws:cloudtrail/trail:Trail"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
FLOWS_ARN = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vpc-flow-logs/airflow-prod"
DAG_TAGS = {"tags": {"purpose": "airflow-dags"}}


def flow_log(name: str, deps: dict[str, list[Resource]] | None = None, **props: Any) -> Resource:
    """A flow log of all traffic into the flow log group; `props` replace its props (None removes one)."""
    return res(FLOW_LOG, name, present({"trafficType": "ALL", "logDestinationType": "cloud-watch-logs", "logDestination": FLOWS_ARN, **props}), deps)


def flows_group(resource_name: str = "flows", **props: Any) -> Resource:
    return res(LOG_GROUP, resource_name, present({"name": "/aws/vpc-flow-logs/airflow-prod", "retentionInDays": 90, "kmsKeyId": KEY_ARN, **props}))


def postgres(name: str, group: Resource | None, **props: Any) -> Resource:
    """A PostgreSQL instance whose parameter group is `group` (by dependency), or the default one."""
    return res(INSTANCE, name, {"engine": "postgres", "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
                                **({"parameterGroupName": f"{group.name}-1"} if group else {}), **props},
               {"parameterGroupName": [group]} if group else None)


def parameter_group(name: str, *parameters: tuple[str, str]) -> Resource:
    return res(PARAMETER_GROUP, name, {"family": "postgres16", "parameters": [{"name": n, "value": v} for n, v in parameters]})


TLS = ("rds.force_ssl", "1")


def dag_bucket(name: str = "dags", **props: Any) -> list[Resource]:
    """The DAG bucket, and its versioning resource (which holds its generated name, dags-1a2b)."""
    bucket = res(BUCKET, name, {**DAG_TAGS, **props})
    return [bucket, res(VERSIONING, f"{name}-versioning", {"bucket": f"{name}-1a2b", "versioningConfiguration": {"status": "Enabled"}},
                        {"bucket": [bucket]})]


def selector(*fields: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {"name": "writes", "fieldSelectors": [{"field": field, operator: values} for field, operator, values in fields]}


def writes(*arns: str, read_only: str | None = "false") -> dict[str, Any]:
    """An advanced selector of S3 object data events under `arns` (readOnly `read_only`, or both when None)."""
    return selector(("eventCategory", "equals", ["Data"]), ("resources.type", "equals", ["AWS::S3::Object"]),
                    *([("readOnly", "equals", [read_only])] if read_only is not None else []), ("resources.ARN", "startsWiths", list(arns)))


def trail(name: str, *selectors: dict[str, Any], **props: Any) -> Resource:
    return res(TRAIL, name, present({"enableLogging": True, "enableLogFileValidation": True, "kmsKeyId": KEY_ARN,
                                     "advancedEventSelectors": list(selectors), **props}))


DAGS = "arn:aws:s3:::dags-1a2b"

# policy -> (compliant resources, violating resources, the violating resources' messages)
CASES: dict[str, tuple[list[Resource], list[Resource], list[str]]] = {
    "vpc-flow-logs": (
        # The platform's VPC, logged through a log group it computed its destination from; an existing VPC's subnet, logged
        # into a group of the stack named by its ARN.
        [res(VPC, "vpc", {"cidrBlock": "10.50.0.0/16"}), flows_group(),
         flow_log("vpc-flows", {"vpcId": [res(VPC, "vpc")], "logDestination": [flows_group()]}, vpcId="vpc-1"),
         flow_log("subnet-flows", subnetId="subnet-1", logDestinationType=None)],
        [res(VPC, "bare", {"cidrBlock": "10.60.0.0/16"}), flows_group("plain", name="/flows", retentionInDays=None, kmsKeyId=None),
         flow_log("rejects", {"logDestination": [flows_group("plain")]}, trafficType="REJECT",
                  logDestination="arn:aws:logs:eu-west-1:123456789012:log-group:/flows"),
         flow_log("to-s3", logDestinationType="s3", logDestination="arn:aws:s3:::flows"),
         flow_log("elsewhere", logDestination="arn:aws:logs:eu-west-1:123456789012:log-group:/another-stack/flows")],
        ["VPC bare has no flow log",
         "flow log rejects records REJECT traffic, not ALL",
         "flow log rejects's log group plain keeps logs forever",
         "flow log rejects's log group plain is not encrypted with a KMS key",
         "flow log to-s3 delivers to s3, not to a log group",
         "flow log elsewhere delivers to a log group this stack does not declare"]),
    "rds-slow-statement-logging": (
        # MySQL logs slow queries otherwise, and is not judged.
        [parameter_group("params", TLS, ("log_min_duration_statement", "1000")),
         postgres("db", parameter_group("params"), identifier="db-1"), res(LOG_GROUP, "db-logs", {"name": "/aws/rds/instance/db-1/postgresql"}),
         res(INSTANCE, "mysql", {"engine": "mysql"})],
        [parameter_group("params", TLS), postgres("db", parameter_group("params"), identifier="db-1", enabledCloudwatchLogsExports=["upgrade"]),
         parameter_group("off", ("log_min_duration_statement", "-1")), postgres("other", parameter_group("off"), identifier="other-1"),
         postgres("plain", None)],
        ["instance db's parameter group params does not set log_min_duration_statement",
         "instance db does not export its postgresql log",
         "instance other's parameter group off sets log_min_duration_statement to -1, which logs no slow statement",
         "instance other exports its postgresql log to /aws/rds/instance/other-1/postgresql, which the stack does not declare",
         "instance plain uses the default parameter group, which logs no slow statement",
         "instance plain exports its postgresql log to /aws/rds/instance/<identifier>/postgresql (the identifier is generated), "
         "which the stack does not declare"]),
    "s3-dag-bucket-audited": (
        # The DAG bucket by its generated name, a DAG bucket named in its props audited by a basic selector, and a bucket
        # that is not a DAG bucket (no trail needed).
        [*dag_bucket(), trail("audit", writes(f"{DAGS}/teams/", f"{DAGS}/shared/")),
         res(BUCKET, "legacy", {"bucket": "legacy-dags", **DAG_TAGS}),
         trail("basic", advancedEventSelectors=None, eventSelectors=[
             {"readWriteType": "WriteOnly", "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::legacy-dags/"]}]}]),
         res(BUCKET, "scratch", {})],
        [*dag_bucket(),
         trail("reads", writes(f"{DAGS}/", read_only="true")),
         trail("narrow", writes(f"{DAGS}/teams/"), enableLogFileValidation=False, kmsKeyId=None),
         trail("stopped", writes(f"{DAGS}/"), enableLogging=False),
         res(BUCKET, "exposed", {"bucket": "exposed", **DAG_TAGS}),
         trail("excluding", selector(("eventCategory", "equals", ["Data"]), ("resources.type", "equals", ["AWS::S3::Object"]),
                                     ("resources.ARN", "notStartsWiths", ["arn:aws:s3:::exposed/teams/"]))),
         trail("deletes-only", selector(("eventCategory", "equals", ["Data"]), ("resources.type", "equals", ["AWS::S3::Object"]),
                                        ("eventName", "equals", ["DeleteObject"]))),
         trail("management", selector(("eventCategory", "equals", ["Management"]))),
         trail("basic-reads", advancedEventSelectors=None, eventSelectors=[
             {"readWriteType": "ReadOnly", "dataResources": [{"type": "AWS::S3::Object", "values": ["arn:aws:s3:::exposed/"]}]}])],
        ["DAG bucket dags: no trail of the stack records the writes and deletes under shared/",
         "DAG bucket dags: trail narrow does not validate its log files",
         "DAG bucket dags: trail narrow does not encrypt its log files with a KMS key",
         "DAG bucket exposed: no trail of the stack records the writes and deletes under teams/, shared/"]),
}


NOT_APPLICABLE = {
    # A VPC's other resources, and a flow log the policy has nothing against.
    "vpc-flow-logs": [res("aws:ec2/subnet:Subnet", "private-a", {"cidrBlock": "10.50.0.0/19"}), flows_group(),
                      flow_log("flows", {"logDestination": [flows_group()]}, transitGatewayId="tgw-1")],
    # Other engines log slow queries their own way; a parameter group alone is no instance.
    "rds-slow-statement-logging": [res(INSTANCE, "mysql", {"engine": "mysql", "parameterGroupName": "default.mysql8.0"}),
                                   parameter_group("orphan", TLS)],
    # Buckets that do not carry the DAG bucket's tag, whatever they hold, and a bucket tagged for something else.
    "s3-dag-bucket-audited": [res(BUCKET, "logs", {"tags": {"team": "analytics"}}), res(BUCKET, "audit", {"tags": {"purpose": "audit"}})],
}


@pytest.mark.parametrize("policy", sorted(NOT_APPLICABLE))
def test_what_a_policy_does_not_judge(policy):
    """Resources outside a policy's concern raise nothing, whatever they hold."""
    assert messages(policy, NOT_APPLICABLE[policy]) == []


UNDECIDED = {
    "traffic-unknown": ("vpc-flow-logs", [flow_log("flows", trafficType=UNKNOWN)]),
    "destination-unknown": ("vpc-flow-logs", [flow_log("flows", logDestination=UNKNOWN)]),
    "exports-unknown": ("rds-slow-statement-logging", [postgres("db", None, enabledCloudwatchLogsExports=UNKNOWN)]),
    # A new bucket's generated name is known; its ARN in a new trail's selector is not, until the bucket exists.
    "selector-arn-unknown": ("s3-dag-bucket-audited", [*dag_bucket(), trail("audit", writes(UNKNOWN, UNKNOWN))]),
    "bucket-name-unknown": ("s3-dag-bucket-audited", [res(BUCKET, "dags", DAG_TAGS)]),
}


@pytest.mark.parametrize("policy, resources", UNDECIDED.values(), ids=UNDECIDED.keys())
def test_unknown_value_is_undecided(policy, resources):
    """A value the check needs that is unknown during preview skips the resource instead of passing or failing it."""
    assert messages(policy, resources) == []


class TestDagBucket:
    """Tests how the pack finds the DAG bucket and which prefixes it requires to be audited."""

    def test_defaults_match_what_the_platform_declares(self):
        """The pack's default tag is the one DagStorage puts on the bucket, and its prefixes the ones DagAudit records."""
        defaults = BY_NAME["s3-dag-bucket-audited"].defaults()
        assert (defaults["bucketTag"], defaults["bucketTagValue"]) == BUCKET_TAG
        assert defaults["prefixes"] == list(AUDITED_PREFIXES)

    def test_another_tag_and_prefix_by_config(self):
        """A stack that marks its DAG bucket otherwise, and loads DAGs from one prefix only, configures both."""
        resources = [res(BUCKET, "dags", {"bucket": "dags", "tags": {"content": "dags"}}), trail("audit", writes("arn:aws:s3:::dags/dags/"))]
        config = {"s3-dag-bucket-audited": {"bucketTag": "content", "bucketTagValue": "dags", "prefixes": ["dags/"]}}
        assert [v.message for v in evaluate(resources, config, policies=[BY_NAME["s3-dag-bucket-audited"]])] == []
        config["s3-dag-bucket-audited"]["prefixes"] = ["dags/", "plugins/"]
        assert [v.message for v in evaluate(resources, config, policies=[BY_NAME["s3-dag-bucket-audited"]])] == [
            "DAG bucket dags: no trail of the stack records the writes and deletes under plugins/"]

    def test_a_selector_of_every_object_or_of_reads_and_writes_covers_the_bucket(self):
        """No resources.ARN field (every bucket of the account), or no readOnly field (reads too), still records the writes."""
        for selector_ in (selector(("eventCategory", "equals", ["Data"]), ("resources.type", "equals", ["AWS::S3::Object"]),
                                   ("readOnly", "equals", ["false"])),
                          writes(f"{DAGS}/", read_only=None)):
            assert messages("s3-dag-bucket-audited", [*dag_bucket(), trail("audit", selector_)]) == []
