"""DAG audit: a CloudTrail trail that records every write and delete of an object under the DAG bucket's `teams/` and
`shared/` (S3 data events with readOnly false), so every change to what Airflow runs names who made it. A team's CI
writes as its own role (`airflow-<env>-ci-<team>`, which only that team's repository and branch may assume, and which
may write only `teams/<team>/`); the platform's deploy, which publishes `shared/`, as its own identity.

Not recorded: reads (objinsync lists and reads the bucket every few seconds from every pod that loads DAGs), Airflow's
task logs under `logs/` (written by Airflow's own roles, many times a minute), and management events, which the
account's management trail records (usually the organisation's; a second copy of management events is charged).

The log files go to a bucket of this trail alone: SSE-KMS with a key only this trail may encrypt with (and the
account's principals decrypt with through S3), versioned, every public access blocked, ACLs disabled, TLS only,
writable by CloudTrail for this trail only, and expired after `dagStorage.auditRetentionDays`. Log file validation is
on: the hourly signed digests prove that no log file was changed or removed since delivery. Object Lock is not: it
would keep even the account from deleting a file before its retention ends (what validation only detects), but a
lock in compliance mode can never be shortened, ties the bucket's lifetime to the longest retention ever set, and keeps
a test stack from being torn down; tamper-proof storage belongs in the organisation's log archive account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components import kms
from components.buckets import private_bucket_settings
from components.names import SHARED_PREFIX, TEAMS_PREFIX

SERVICE = "cloudtrail.amazonaws.com"
# What the trail records: the prefixes whose objects reach Airflow.
AUDITED_PREFIXES = (f"{TEAMS_PREFIX}/", f"{SHARED_PREFIX}/")
# How long a log file deleted or overwritten by hand can still be restored.
NONCURRENT_DAYS = 30


def trail_arn(partition: str, region: str, account_id: str, trail_name: str) -> str:
    return f"arn:{partition}:cloudtrail:{region}:{account_id}:trail/{trail_name}"


def write_selector(bucket_arn: pulumi.Input[str], prefixes: Sequence[str] = AUDITED_PREFIXES) -> dict:
    """The advanced event selector of writes and deletes (PutObject, CopyObject, DeleteObject(s), multipart uploads...)
    of the objects under `prefixes` of one bucket."""
    return {"name": "DAG bucket object writes and deletes", "field_selectors": [
        {"field": "eventCategory", "equals": ["Data"]},
        {"field": "resources.type", "equals": ["AWS::S3::Object"]},
        {"field": "readOnly", "equals": ["false"]},
        {"field": "resources.ARN", "starts_withs": [pulumi.Output.concat(bucket_arn, "/", prefix) for prefix in prefixes]},
    ]}


@dataclass
class DagAuditArgs:
    partition: str
    region: str
    account_id: str
    bucket_arn: pulumi.Input[str]
    retention_days: int
    protect: bool


class DagAudit(pulumi.ComponentResource):
    trail_arn: str
    bucket_name: pulumi.Output[str]

    def __init__(self, name: str, args: DagAuditArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:DagAudit", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Named, so the key and the bucket policy can name the trail before it exists.
        self.trail_arn = trail_arn(args.partition, args.region, args.account_id, name)
        this_trail = {"test": "StringEquals", "variable": "aws:SourceArn", "values": [self.trail_arn]}
        account = kms.Account(args.partition, args.account_id)
        key = kms.customer_managed_key(name, "CloudTrail log files of the DAG bucket's writes", self, args.protect, account, [
            kms.to_service("CloudTrailEncryptsLogFiles", SERVICE, ["kms:GenerateDataKey*"], [this_trail, {
                "test": "StringLike", "variable": "kms:EncryptionContext:aws:cloudtrail:arn",
                "values": [f"arn:{args.partition}:cloudtrail:*:{args.account_id}:trail/*"]}]),
            kms.to_service("CloudTrailDescribesKey", SERVICE, ["kms:DescribeKey"], [this_trail]),
            # Readers (whose IAM policies allow it) decrypt the log files they get from the bucket, through S3 only.
            kms.through_service("AccountReadsThroughS3", account, kms.service_host("s3", args.region), ["kms:Decrypt"]),
        ])

        bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=False, opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.bucket_name = bucket.bucket
        cloudtrail = [{"type": "Service", "identifiers": [SERVICE]}]
        policy = private_bucket_settings(name, bucket, key.arn, self, policy_name="policy", statements=[
            {"sid": "CloudTrailChecksBucketAcl", "actions": ["s3:GetBucketAcl"], "resources": [bucket.arn], "principals": cloudtrail,
             "conditions": [this_trail]},
            {"sid": "CloudTrailWritesLogFiles", "actions": ["s3:PutObject"], "principals": cloudtrail,
             "resources": [pulumi.Output.concat(bucket.arn, f"/AWSLogs/{args.account_id}/*")],
             "conditions": [this_trail, {"test": "StringEquals", "variable": "s3:x-amz-acl", "values": ["bucket-owner-full-control"]}]},
        ])
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[
                # A log file expires (a delete marker on a versioned bucket), then its version NONCURRENT_DAYS later.
                {"id": "expire-audit-logs", "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"days": args.retention_days},
                 "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_DAYS}},
                # Then the marker, alone; and uploads CloudTrail never finished.
                {"id": "clean-up", "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"expired_object_delete_marker": True},
                 "abort_incomplete_multipart_upload": {"days_after_initiation": 7}},
            ], opts=child)

        aws.cloudtrail.Trail(
            f"{name}-trail", name=name, s3_bucket_name=bucket.id, kms_key_id=key.arn,
            enable_logging=True, enable_log_file_validation=True,
            # Data events of one bucket are recorded in its region; global service events are management events.
            is_multi_region_trail=False, include_global_service_events=False,
            # With advanced selectors, a trail records management events only if a selector asks for them: none does.
            advanced_event_selectors=[write_selector(args.bucket_arn)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.register_outputs({"trailArn": self.trail_arn, "bucketName": self.bucket_name})
