"""Tests the DagStorage component: the bucket's protections, team CI roles and the pods' reader role."""

from __future__ import annotations

import json

import pytest

from components.dag_storage import team_prefix, team_role_name
from tools.offline import Plan


def statements(document: str) -> dict[str, dict]:
    return {s.get("Sid", s["Effect"]): s for s in json.loads(document)["Statement"]}


def bucket_child(plan: Plan, suffix: str):
    return plan.named(f"airflow-prod-dags-{suffix}")


class TestBucket:
    """Tests the DAG bucket."""

    def test_encrypted_with_the_dag_key(self, prod_plan):
        """Objects are encrypted with SSE-KMS under the component's own rotating key, with a bucket key."""
        key = bucket_child(prod_plan, "key")
        [rule] = bucket_child(prod_plan, "encryption").inputs["rules"]
        assert rule == {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]},
                        "bucketKeyEnabled": True}
        assert key.inputs["enableKeyRotation"] is True

    def test_versioned_private_and_owner_enforced(self, prod_plan):
        """Versioning is on, all four public access blocks are on, ACLs are disabled."""
        assert bucket_child(prod_plan, "versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
        block = bucket_child(prod_plan, "public-access-block").inputs
        assert [block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")] == [True] * 4
        assert bucket_child(prod_plan, "ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}

    def test_bucket_policy_denies_plain_http(self, prod_plan):
        """The bucket policy denies every request that does not use TLS, on the bucket and its objects."""
        bucket = bucket_child(prod_plan, "bucket")
        [deny] = json.loads(bucket_child(prod_plan, "tls-only").inputs["policy"])["Statement"]
        assert deny == {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Action": "s3:*", "Principal": "*",
                        "Resource": [bucket.outputs["arn"], bucket.outputs["arn"] + "/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}

    @pytest.mark.parametrize("stack_fixture, days, log_days", [("dev_plan", 30, 14), ("prod_plan", 90, 90)], ids=["dev", "prod"])
    def test_lifecycle(self, request, stack_fixture, days, log_days):
        """Old DAG versions expire after noncurrentVersionDays, task logs after logRetentionDays; stale uploads are aborted."""
        plan = request.getfixturevalue(stack_fixture)
        lifecycle = plan.named(f"airflow-{plan.stack}-dags-lifecycle")
        rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
        assert sorted(rules) == ["abort-incomplete-uploads", "expire-old-versions", "expire-task-logs"]
        assert rules["expire-old-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": days}
        assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
        logs = rules["expire-task-logs"]
        assert (logs["filter"], logs["expiration"], logs["noncurrentVersionExpiration"]) == (
            {"prefix": "logs/"}, {"days": log_days}, {"noncurrentDays": 1})


class TestTeamRoles:
    """Tests one CI role per team."""

    def test_one_role_per_team_with_a_predictable_name(self, prod_plan):
        """Each configured team gets a role named <environment>-ci-<team>, and the stack exports its ARN."""
        assert prod_plan.outputs["teamRoleArns"] == {
            team: f"arn:aws:iam::123456789012:role/airflow-prod-ci-{team}" for team in ("analytics", "marketing", "finance")}
        assert team_role_name("airflow-prod", "analytics") == "airflow-prod-ci-analytics"

    def test_trust_is_one_repository_and_branch(self, prod_plan):
        """Only GitHub Actions runs of the team's repository on main may assume the role."""
        github = prod_plan.named("airflow-prod-dags-github-oidc")
        [trust] = json.loads(prod_plan.named("airflow-prod-dags-team-finance").inputs["assumeRolePolicy"])["Statement"]
        assert trust == {
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": github.outputs["arn"]},
            "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                           "token.actions.githubusercontent.com:sub": "repo:example-org/finance-dags:ref:refs/heads/main"}}}
        assert github.inputs == {"url": "https://token.actions.githubusercontent.com", "clientIdLists": ["sts.amazonaws.com"]}

    def test_permissions_are_the_teams_prefix_only(self, prod_plan):
        """The team lists only its prefix, writes only under it, and uses the key only through S3."""
        bucket_arn = bucket_child(prod_plan, "bucket").outputs["arn"]
        key_arn = bucket_child(prod_plan, "key").outputs["arn"]
        policy = statements(prod_plan.named("airflow-prod-dags-team-marketing-policy").inputs["policy"])
        assert policy["ListOwnPrefix"] == {"Sid": "ListOwnPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
                                           "Condition": {"StringLike": {"s3:prefix": ["teams/marketing/", "teams/marketing/*"]}}}
        assert policy["WriteOwnPrefix"]["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        assert policy["WriteOwnPrefix"]["Resource"] == f"{bucket_arn}/teams/marketing/*"
        assert policy["EncryptWithDagKey"]["Resource"] == key_arn
        assert policy["EncryptWithDagKey"]["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
        assert team_prefix("marketing") == "teams/marketing/"

    def test_existing_github_provider_is_reused(self, plan_with):
        """With githubOidcProviderArn set, no provider is created and the team roles trust the given one."""
        arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        plan = plan_with("dev", {"airflow-platform:dagStorage": {"githubOidcProviderArn": arn}})
        providers = [p.inputs["url"] for p in plan.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")]
        assert providers == [plan.named("airflow-dev-cluster-oidc").inputs["url"]]
        [trust] = json.loads(plan.named("airflow-dev-dags-team-analytics").inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Federated": arn}

    def test_no_teams_no_roles(self, plan_with):
        """A stack without teams creates no team role."""
        plan = plan_with("dev", {"airflow-platform:teams": []})
        assert [r.name for r in plan.of_type("aws:iam/role:Role") if "-team-" in r.name] == []
        assert plan.outputs["teamRoleArns"] == {}


class TestReaderRole:
    """Tests the role objinsync uses in the Airflow pods."""

    def test_trust_is_the_dag_syncing_service_accounts(self, prod_plan):
        """Only the Airflow components that sync DAGs, in the airflow namespace, may assume it."""
        [trust] = json.loads(prod_plan.named("airflow-prod-dags-reader").inputs["assumeRolePolicy"])["Statement"]
        host = prod_plan.named("airflow-prod-cluster-oidc").inputs["url"].removeprefix("https://")
        assert trust["Condition"]["StringEquals"][f"{host}:sub"] == [
            "system:serviceaccount:airflow:airflow-dag-processor", "system:serviceaccount:airflow:airflow-triggerer",
            "system:serviceaccount:airflow:airflow-worker"]
        assert trust["Principal"] == {"Federated": prod_plan.outputs["oidcProviderArn"]}

    def test_permissions_are_read_only(self, prod_plan):
        """List the bucket, get DAGs and the shared modules (not logs), decrypt through S3; no write action anywhere."""
        policy = json.loads(prod_plan.named("airflow-prod-dags-reader-policy").inputs["policy"])
        actions = sorted(a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
        assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]
        [read] = [s for s in policy["Statement"] if s["Sid"] == "ReadDags"]
        bucket = prod_plan.named("airflow-prod-dags-bucket").outputs["arn"]
        assert read["Resource"] == [f"{bucket}/teams/*", f"{bucket}/shared/*"]


class TestSharedModules:
    """Tests the modules the platform publishes under shared/."""

    def test_notifier_published_from_the_dagtool_file(self, prod_plan):
        """The company notifier is the very file dagtool installs, under shared/, re-uploaded when it changes."""
        import hashlib

        from components.platform import NOTIFIER

        [notifier] = prod_plan.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
        assert (notifier.inputs["key"], notifier.inputs["contentType"]) == ("shared/airflow_platform_notify.py", "text/x-python")
        assert notifier.inputs["bucket"] == prod_plan.outputs["dagBucket"]
        assert notifier.inputs["sourceHash"] == hashlib.sha256(NOTIFIER.read_bytes()).hexdigest()
        assert NOTIFIER.parent.name == "dagtool" and notifier.redacted_inputs["source"] == {"fileAsset": "dagtool/airflow_platform_notify.py"}
