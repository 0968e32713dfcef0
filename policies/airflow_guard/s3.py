"""S3: versioning, SSE-KMS, the four public access blocks, TLS only, nothing public.

pulumi-aws 7 configures a bucket through separate resources (BucketVersioning, BucketServerSideEncryptionConfiguration,
BucketPublicAccessBlock, BucketPolicy) whose `bucket` property is computed from the bucket; the inline (deprecated)
settings of the Bucket itself count too.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .documents import as_list, condition_values, statements
from .model import Resource, Stack, known, policy

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
ENCRYPTION = ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
PUBLIC_CANNED_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _settings(bucket: Resource, stack: Stack, types: tuple[str, ...]) -> list[Resource]:
    """The bucket's settings resources of `types`."""
    return stack.pointing_at(bucket, types, "bucket", bucket.props.get("bucket"))


@policy("s3-bucket-versioning-enabled", types=BUCKETS, needs_stack=True, severity="medium", checkov=("CKV_AWS_21",),
        description="S3 buckets keep every version of their objects.",
        remediation="Add an aws.s3.BucketVersioning for the bucket with versioning_configuration status 'Enabled' "
                    "(DagStorage does); a DAG overwritten or deleted by mistake can then be restored.")
def versioning(bucket: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    if bucket.get("versioning.enabled") is True:
        return
    statuses = [known(r.get("versioningConfiguration.status")) for r in _settings(bucket, stack, VERSIONING)]
    if "Enabled" not in statuses:
        yield f"bucket {bucket.name} has no versioning enabled" + (f" (status {', '.join(map(str, statuses))})" if statuses else "")


def _kms_rules(rules: Any) -> list[tuple[Any, Any]]:
    return [(known(rule.get("applyServerSideEncryptionByDefault", {}).get("sseAlgorithm")),
             known(rule.get("applyServerSideEncryptionByDefault", {}).get("kmsMasterKeyId"))) for rule in as_list(rules)]


@policy("s3-bucket-sse-kms", types=BUCKETS, needs_stack=True, severity="high", checkov=("CKV_AWS_19", "CKV_AWS_145"),
        description="S3 buckets encrypt by default with a customer-managed KMS key.",
        remediation="Add an aws.s3.BucketServerSideEncryptionConfiguration for the bucket whose rule applies sse_algorithm "
                    "'aws:kms' with kms_master_key_id set to a key of this stack (bucket_key_enabled keeps KMS costs down).")
def sse_kms(bucket: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    found = [pair for r in _settings(bucket, stack, ENCRYPTION) for pair in _kms_rules(r.props.get("rules"))]
    found += _kms_rules(bucket.get("serverSideEncryptionConfiguration.rule"))
    if not found:
        yield f"bucket {bucket.name} has no default encryption configured"
    for algorithm, key in found:
        if algorithm not in KMS_ALGORITHMS:
            yield f"bucket {bucket.name} encrypts with {algorithm}, not aws:kms"
        elif not key:
            yield f"bucket {bucket.name} encrypts with the AWS-managed aws/s3 key: no kms_master_key_id"


@policy("s3-bucket-public-access-blocked", types=BUCKETS, needs_stack=True, severity="critical",
        checkov=("CKV2_AWS_6", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"),
        description="S3 buckets block every kind of public access.",
        remediation="Add an aws.s3.BucketPublicAccessBlock for the bucket with block_public_acls, block_public_policy, "
                    "ignore_public_acls and restrict_public_buckets all True.")
def public_access_block(bucket: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    blocks = _settings(bucket, stack, PUBLIC_ACCESS_BLOCK)
    if not blocks:
        yield f"bucket {bucket.name} has no public access block"
    for block in blocks:
        missing = [flag for flag in BLOCKS if known(block.props.get(flag)) is not True]
        if missing:
            yield f"bucket {bucket.name}'s public access block leaves {', '.join(missing)} off"


def _denies_plain_http(document: Any) -> bool:
    for statement in statements(document):
        secure = condition_values(statement, "aws:SecureTransport").get("Bool", [])
        everyone = statement.principal in ("*", {"AWS": "*"}) or statement.principal == {"AWS": ["*"]}
        all_actions = any(a in ("*", "s3:*") for a in statement.actions)
        covers = any(r.endswith("/*") for r in statement.resources) and any(not r.endswith("*") for r in statement.resources)
        if statement.effect == "Deny" and everyone and all_actions and covers and [str(v).lower() for v in secure] == ["false"]:
            return True
    return False


@policy("s3-bucket-tls-only", types=BUCKETS, needs_stack=True, severity="high",
        description="S3 buckets refuse requests that do not use TLS.",
        remediation="Attach an aws.s3.BucketPolicy that denies s3:* on the bucket and bucket/* to Principal '*' when "
                    "aws:SecureTransport is 'false'.")
def tls_only(bucket: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    documents = [r.props.get("policy") for r in _settings(bucket, stack, BUCKET_POLICY)] + [bucket.props.get("policy")]
    if not any(_denies_plain_http(d) for d in documents if d):
        yield f"bucket {bucket.name} has no policy statement denying requests without TLS"


@policy("s3-no-public-acl-or-policy", types=BUCKETS + BUCKET_POLICY + ACLS, severity="critical",
        checkov=("CKV_AWS_20", "CKV_AWS_57", "CKV_AWS_70"),
        description="No S3 ACL or bucket policy grants access to everyone.",
        remediation="Remove the public canned ACL or grant (BucketOwnerEnforced ownership disables ACLs altogether), and give "
                    "access through IAM roles; a bucket policy may Allow only named principals.")
def no_public_access(resource: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    acl = known(resource.props.get("acl"))
    if acl in PUBLIC_CANNED_ACLS:
        yield f"{resource.name} sets the canned ACL {acl}"
    grants = as_list(resource.props.get("grants")) + as_list(resource.get("accessControlPolicy.grants"))
    for grant in grants:
        uri = known(grant.get("uri")) or known((grant.get("grantee") or {}).get("uri"))
        if uri in PUBLIC_GRANTEES:
            yield f"{resource.name} grants {', '.join(as_list(grant.get('permissions')) or [str(known(grant.get('permission')))])} to {uri.rsplit('/', 1)[-1]}"
    document = resource.props.get("policy")
    for statement in statements(document) if document else []:
        principals = statement.principal if isinstance(statement.principal, Mapping) else {"AWS": statement.principal}
        public = any("*" in as_list(v) for v in principals.values()) if statement.principal is not None else False
        if statement.allows and public:
            yield f"{resource.name}: {statement.label()} allows {', '.join(statement.actions) or 'NotAction'} to everyone"
