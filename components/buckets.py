"""The settings every private bucket of the platform gets: versioning, SSE-KMS with a key of this stack (and a bucket
key), all four public access blocks, ACLs disabled, and a bucket policy that refuses plain HTTP (plus whatever else the
bucket's owner allows in it). The pack's s3-* policies check each of them.
"""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_aws as aws

from components import iam


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict:
    """The statement that refuses every request to the bucket and its objects made without TLS."""
    return {"sid": "DenyInsecureTransport", "effect": "Deny", "actions": ["s3:*"],
            "resources": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
            "principals": [{"type": "*", "identifiers": ["*"]}],
            "conditions": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]}


def private_bucket_settings(name: str, bucket: aws.s3.Bucket, key_arn: pulumi.Input[str], parent: pulumi.Resource,
                            policy_name: str = "tls-only", statements: Sequence[dict] = ()) -> aws.s3.BucketPolicy:
    """`bucket`'s versioning, encryption, public access block, ownership and policy (`<name>-<policy_name>`, TLS only and then
    `statements`), each a resource `<name>-<setting>` under `parent`."""
    child = pulumi.ResourceOptions(parent=parent)
    aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption", bucket=bucket.id,
        # A bucket key cuts KMS requests (and cost) for thousands of small objects.
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
                "bucket_key_enabled": True}], opts=child)
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
        ignore_public_acls=True, restrict_public_buckets=True, opts=child)
    aws.s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
    return aws.s3.BucketPolicy(f"{name}-{policy_name}", bucket=bucket.id,
                               policy=iam.document([deny_insecure_transport(bucket.arn), *statements], parent),
                               opts=pulumi.ResourceOptions(parent=parent, depends_on=[public_access_block]))
