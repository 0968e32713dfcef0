"""DAG storage: one bucket for every team's DAGs (and, under `logs/`, Airflow's task logs), a CI role per team
that can write only its own prefix, and one read-only role for the Airflow pods that sync the DAGs.

Each team owns `teams/<team>/`. No marker object is written for it: the prefix exists once the team
publishes, and a zero-byte "directory" object would only be mirrored into every pod by objinsync.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components import iam, kms
from components.buckets import private_bucket_settings
from components.config import TeamConfig
from components.names import LOGS_PREFIX, SHARED_PREFIX, TEAMS_PREFIX



# The tag that marks the DAG bucket.
BUCKET_TAG = ("purpose", "airflow-dags")


def team_prefix(team: str) -> str:
    return f"{TEAMS_PREFIX}/{team}/"


def team_role_name(environment_name: str, team: str) -> str:
    """A predictable name, so a team's CI can be configured before the stack's outputs are read."""
    return f"{environment_name}-ci-{team}"


@dataclass
class DagStorageArgs:
    environment_name: str
    region: str
    partition: str
    account_id: str
    teams: Sequence[TeamConfig]
    noncurrent_version_days: int
    log_retention_days: int
    cluster_oidc: iam.OidcIssuer
    reader_namespace: str
    reader_service_accounts: Sequence[str]
    protect: bool
    github_oidc_provider_arn: Optional[str] = None
    # Files the platform publishes under shared/ for every DAG to import (name in the bucket -> file here).
    shared_files: dict[str, Path] = field(default_factory=dict)


class DagStorage(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    reader_role_arn: pulumi.Output[str]
    team_role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: DagStorageArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:DagStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._args = args
        account = kms.Account(args.partition, args.account_id)
        key = kms.customer_managed_key(name, "DAG bucket encryption", self, args.protect, account, [
            # Through S3 only, for the principals whose IAM policies name this key: the reader and team CI roles here,
            # the Airflow roles that write and read task logs (AirflowAccess, created after this key), and whoever
            # deploys (it uploads the shared files).
            kms.through_service("AccountUsesThroughS3", account, kms.service_host("s3", args.region), kms.ENVELOPE_ACTIONS)])
        self.key_arn = key.arn

        # The policy pack finds the DAG bucket by this tag (s3-dag-bucket-audited: its writes must be recorded).
        bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=False, tags=dict([BUCKET_TAG]),
                               opts=pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.bucket_name, self.bucket_arn = bucket.bucket, bucket.arn
        private_bucket_settings(name, bucket, key.arn, self)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[
                {"id": "expire-old-versions", "status": "Enabled", "filter": {"prefix": ""},
                 "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
                 "expiration": {"expired_object_delete_marker": True}},
                {"id": "abort-incomplete-uploads", "status": "Enabled", "filter": {"prefix": ""},
                 "abort_incomplete_multipart_upload": {"days_after_initiation": 7}},
                {"id": "expire-task-logs", "status": "Enabled", "filter": {"prefix": f"{LOGS_PREFIX}/"},
                 "expiration": {"days": args.log_retention_days},
                 # Appending to a task log rewrites it; the versions it leaves behind go the next day.
                 "noncurrent_version_expiration": {"noncurrent_days": 1}},
            ], opts=child)

        for file_name, path in args.shared_files.items():
            aws.s3.BucketObjectv2(f"{name}-shared-{path.stem.replace('_', '-')}", bucket=bucket.id, key=f"{SHARED_PREFIX}/{file_name}",
                                  source=pulumi.FileAsset(str(path)), content_type="text/x-python",
                                  # A new version whenever the file changes, so objinsync (which compares ETags) fetches it.
                                  source_hash=hashlib.sha256(path.read_bytes()).hexdigest(), opts=child)

        github_provider_arn = args.github_oidc_provider_arn or aws.iam.OpenIdConnectProvider(
            f"{name}-github-oidc", url=f"https://{iam.GITHUB_OIDC_HOST}", client_id_lists=[iam.STS_AUDIENCE], opts=child).arn
        self.team_role_arns = {team.name: self._team_role(name, team, github_provider_arn, bucket.arn, key.arn)
                               for team in args.teams}

        reader = aws.iam.Role(
            f"{name}-reader", assume_role_policy=iam.irsa_trust(args.cluster_oidc, args.reader_namespace, args.reader_service_accounts, self),
            description="Airflow pods: read the DAG bucket (objinsync)", opts=child)
        aws.iam.RolePolicy(f"{name}-reader-policy", role=reader.id, policy=self._reader_policy(bucket.arn, key.arn), opts=child)
        self.reader_role_arn = reader.arn

        self.register_outputs({"bucketName": self.bucket_name, "readerRoleArn": self.reader_role_arn, "teamRoleArns": self.team_role_arns})

    def _via_s3(self) -> dict:
        # The key may only be used by S3 on the role's behalf, not called directly.
        return {"test": "StringEquals", "variable": "kms:ViaService", "values": [f"s3.{self._args.region}.amazonaws.com"]}

    def _team_role(self, name: str, team: TeamConfig, github_provider_arn: pulumi.Input[str],
                   bucket_arn: pulumi.Output[str], key_arn: pulumi.Output[str]) -> pulumi.Output[str]:
        prefix = team_prefix(team.name)
        role = aws.iam.Role(
            f"{name}-team-{team.name}",
            name=team_role_name(self._args.environment_name, team.name),
            assume_role_policy=iam.github_trust(github_provider_arn, team.repository, team.branch, self),
            description=f"CI of {team.repository}: publish DAGs under {prefix}",
            max_session_duration=3600,
            tags={"team": team.name, "team-owner": team.owner},
            opts=pulumi.ResourceOptions(parent=self))
        policy = iam.document([
            {"sid": "ListOwnPrefix", "actions": ["s3:ListBucket"], "resources": [bucket_arn],
             "conditions": [{"test": "StringLike", "variable": "s3:prefix", "values": [prefix, f"{prefix}*"]}]},
            {"sid": "WriteOwnPrefix", "actions": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
             "resources": [pulumi.Output.concat(bucket_arn, "/", prefix, "*")]},
            {"sid": "EncryptWithDagKey", "actions": ["kms:GenerateDataKey", "kms:Decrypt"], "resources": [key_arn],
             "conditions": [self._via_s3()]},
        ], self)
        aws.iam.RolePolicy(f"{name}-team-{team.name}-policy", role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=self))
        return role.arn

    def _reader_policy(self, bucket_arn: pulumi.Output[str], key_arn: pulumi.Output[str]) -> pulumi.Output[str]:
        return iam.document([
            {"sid": "ListBucket", "actions": ["s3:ListBucket"], "resources": [bucket_arn]},
            {"sid": "ReadDags", "actions": ["s3:GetObject"], "resources": [pulumi.Output.concat(bucket_arn, f"/{TEAMS_PREFIX}/*"),
                                                                           pulumi.Output.concat(bucket_arn, f"/{SHARED_PREFIX}/*")]},
            {"sid": "DecryptWithDagKey", "actions": ["kms:Decrypt"], "resources": [key_arn], "conditions": [self._via_s3()]},
        ], self)
