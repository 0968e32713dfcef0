"""Tests the DagAudit component: a trail of every write and delete under the DAG bucket's teams/ and shared/, delivered to
a private, encrypted, expiring bucket of its own; and that such a record names the team whose CI wrote."""

from __future__ import annotations

import json

import pytest

from components.dag_storage import BUCKET_TAG, team_prefix, team_role_name
from tools.offline import Plan

TRAIL = "aws:cloudtrail/trail:Trail"
ACCOUNT = "123456789012"
TRAIL_ARN = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/airflow-prod-dag-audit"
THIS_TRAIL = {"StringEquals": {"aws:SourceArn": TRAIL_ARN}}


def statements(document: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in json.loads(document)["Statement"]}


def audit(plan: Plan, suffix: str):
    return plan.named(f"airflow-{plan.stack}-dag-audit-{suffix}")


def dag_bucket_arn(plan: Plan) -> str:
    return plan.named(f"airflow-{plan.stack}-dags-bucket").outputs["arn"]


class TestTrail:
    """Tests what the trail records and where it delivers."""

    def test_writes_and_deletes_under_teams_and_shared_only(self, prod_plan):
        """One advanced selector: S3 object data events of the DAG bucket's teams/ and shared/, writes only (readOnly false);
        no management events (no selector asks for them), no global service events, one region."""
        trail, bucket = audit(prod_plan, "trail"), audit(prod_plan, "bucket")
        arn = dag_bucket_arn(prod_plan)
        assert trail.inputs == {
            "name": "airflow-prod-dag-audit", "s3BucketName": bucket.id, "kmsKeyId": audit(prod_plan, "key").outputs["arn"],
            "enableLogging": True, "enableLogFileValidation": True, "isMultiRegionTrail": False, "includeGlobalServiceEvents": False,
            "advancedEventSelectors": [{"name": "DAG bucket object writes and deletes", "fieldSelectors": [
                {"field": "eventCategory", "equals": ["Data"]},
                {"field": "resources.type", "equals": ["AWS::S3::Object"]},
                {"field": "readOnly", "equals": ["false"]},
                {"field": "resources.ARN", "startsWiths": [f"{arn}/teams/", f"{arn}/shared/"]}]}]}
        assert trail.outputs["arn"] == TRAIL_ARN
        # Created once CloudTrail may write to the bucket (CreateTrail checks it).
        assert audit(prod_plan, "policy").urn in trail.dependencies

    def test_dag_bucket_is_tagged_for_the_pack(self, prod_plan):
        """The DAG bucket carries the tag the pack finds it by; the trail's own bucket does not."""
        assert prod_plan.named("airflow-prod-dags-bucket").inputs["tags"] == dict([BUCKET_TAG])
        assert "tags" not in audit(prod_plan, "bucket").inputs


class TestAttribution:
    """Tests that a recorded write names the team whose CI made it."""

    def test_a_team_write_is_recorded_and_names_the_team(self, prod_plan):
        """Every team's CI writes only under teams/<team>/, which the selector covers, as a role of its own (its name in the
        record's userIdentity: arn:aws:sts::<account>:assumed-role/airflow-prod-ci-<team>/<session>), which only that team's
        repository may assume; what the platform publishes, under shared/, is covered too; task logs are not."""
        arn = dag_bucket_arn(prod_plan)
        [[*_, covered]] = [s["fieldSelectors"] for s in audit(prod_plan, "trail").inputs["advancedEventSelectors"]]
        teams = ("analytics", "marketing", "finance")
        roles = {team: prod_plan.named(f"airflow-prod-dags-team-{team}") for team in teams}
        assert {team: role.inputs["name"] for team, role in roles.items()} == {team: team_role_name("airflow-prod", team) for team in teams}
        assert len({role.outputs["arn"] for role in roles.values()}) == len(teams)
        for team, role in roles.items():
            [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
            assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == f"repo:example-org/{team}-dags:ref:refs/heads/main"
            writes = statements(prod_plan.named(f"airflow-prod-dags-team-{team}-policy").inputs["policy"])["WriteOwnPrefix"]
            assert writes["Resource"] == f"{arn}/{team_prefix(team)}*"
            assert any(writes["Resource"].startswith(prefix) for prefix in covered["startsWiths"])
        [notifier] = prod_plan.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        assert any(f"{arn}/{notifier.inputs['key']}".startswith(prefix) for prefix in covered["startsWiths"])
        assert not any(f"{arn}/logs/dag_id=x/run_id=y/task_id=z/attempt=1.log".startswith(prefix) for prefix in covered["startsWiths"])


class TestBucket:
    """Tests the trail's own bucket."""

    def test_encrypted_versioned_private_and_owner_enforced(self, prod_plan):
        """SSE-KMS with the trail's key and a bucket key, versioning, all four public access blocks, ACLs disabled."""
        key = audit(prod_plan, "key")
        assert audit(prod_plan, "encryption").inputs["rules"] == [
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}, "bucketKeyEnabled": True}]
        assert audit(prod_plan, "versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
        block = audit(prod_plan, "public-access-block").inputs
        assert [block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")] == [True] * 4
        assert audit(prod_plan, "ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}

    def test_policy_is_tls_only_and_lets_this_trail_deliver(self, prod_plan):
        """Plain HTTP is refused; CloudTrail may read the ACL and put log files under AWSLogs/<account>/, for this trail only."""
        arn = audit(prod_plan, "bucket").outputs["arn"]
        cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
        assert statements(audit(prod_plan, "policy").inputs["policy"]) == {
            "DenyInsecureTransport": {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Action": "s3:*", "Principal": "*",
                                      "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            "CloudTrailChecksBucketAcl": {"Sid": "CloudTrailChecksBucketAcl", "Effect": "Allow", "Action": "s3:GetBucketAcl", "Resource": arn,
                                          "Principal": cloudtrail, "Condition": THIS_TRAIL},
            "CloudTrailWritesLogFiles": {"Sid": "CloudTrailWritesLogFiles", "Effect": "Allow", "Action": "s3:PutObject",
                                         "Resource": f"{arn}/AWSLogs/{ACCOUNT}/*", "Principal": cloudtrail,
                                         "Condition": {"StringEquals": {"aws:SourceArn": TRAIL_ARN, "s3:x-amz-acl": "bucket-owner-full-control"}}}}

    @pytest.mark.parametrize("change, days", [({}, 365), ({"auditRetentionDays": 731}, 731)], ids=["default", "configured"])
    def test_log_files_expire(self, plan_with, change, days):
        """Log files expire after dagStorage.auditRetentionDays, their old versions 30 days later; then the markers go."""
        plan = plan_with("prod", {"airflow-platform:dagStorage": {"noncurrentVersionDays": 90, **change}})
        assert audit(plan, "lifecycle").inputs["rules"] == [
            {"id": "expire-audit-logs", "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"days": days},
             "noncurrentVersionExpiration": {"noncurrentDays": 30}},
            {"id": "clean-up", "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"expiredObjectDeleteMarker": True},
             "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}]

    def test_prod_protects_the_bucket_and_key_dev_does_not(self, prod_plan, dev_plan):
        """The audit log outlives a mistaken update in prod; dev stays disposable."""
        assert [(audit(plan, "bucket").protect, audit(plan, "key").protect) for plan in (prod_plan, dev_plan)] == [(True, True), (False, False)]


def test_key_lets_only_this_trail_encrypt(prod_plan):
    """CloudTrail may make data keys for this trail's log files and describe the key; the account's principals may decrypt
    through S3 (reading a log file); nothing else uses the key."""
    key = audit(prod_plan, "key")
    policy = statements(key.inputs["policy"])
    assert list(policy) == ["AccountAdministers", "CloudTrailEncryptsLogFiles", "CloudTrailDescribesKey", "AccountReadsThroughS3"]
    assert {sid: policy[sid] for sid in ("CloudTrailEncryptsLogFiles", "CloudTrailDescribesKey", "AccountReadsThroughS3")} == {
        "CloudTrailEncryptsLogFiles": {
            "Sid": "CloudTrailEncryptsLogFiles", "Effect": "Allow", "Action": "kms:GenerateDataKey*", "Resource": "*",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Condition": {**THIS_TRAIL, "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT}:trail/*"}}},
        "CloudTrailDescribesKey": {"Sid": "CloudTrailDescribesKey", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*",
                                   "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Condition": THIS_TRAIL},
        "AccountReadsThroughS3": {"Sid": "AccountReadsThroughS3", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
                                  "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                  "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com", "kms:CallerAccount": ACCOUNT}}}}
