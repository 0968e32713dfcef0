"""A moto AWS account for proving IAM documents for real: the plan's bucket, some of its roles, and for each role
an S3 client logged in the way IRSA or GitHub OIDC would log it in.

moto evaluates identity policies' actions and resources (not bucket policies, and of conditions only
StringEquals on keys it knows), so tests built on this prove resource scoping; conditions are asserted on the
documents themselves. It resolves a call's resource only for S3, SQS calls that name a queue URL, IAM calls that
name a role and STS AssumeRole; every other call (EC2, EKS, SSM, KMS, ...) is authorized against "*".
Set-up happens before the test body; the body runs under `set_initial_no_auth_action_count(ENFORCED_FROM_THE_FIRST_CALL)`,
so every call it makes is checked by IAM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import boto3
from botocore.exceptions import ClientError

from tools.offline import Plan

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ENFORCED_FROM_THE_FIRST_CALL = 0


@dataclass
class RoleDocuments:
    name: str
    trust: str
    policy: str


def role_documents(plan: Plan, role_resource: str) -> RoleDocuments:
    """A role of the plan with its trust and its one inline policy."""
    role = plan.named(role_resource)
    [policy] = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id]
    return RoleDocuments(name=role.id, trust=role.inputs["assumeRolePolicy"], policy=policy.inputs["policy"])


def denied(call) -> bool:
    """Whether IAM refused the call (to JSON-protocol services, SQS and KMS among them, moto answers with its XML error
    body, which botocore reports as code 403)."""
    try:
        call()
    except ClientError as error:
        code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
        return code == "AccessDenied" or (code == "403" and "<Code>AccessDenied</Code>" in message)
    return False


class Sandbox:
    """The plan's DAG bucket and the given roles in moto, with a logged-in S3 client per role."""

    def __init__(self, plan: Plan, roles: dict[str, RoleDocuments]):
        self.bucket = plan.outputs["dagBucket"]
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="test-admin")
        iam.put_user_policy(UserName="test-admin", PolicyName="admin", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        keys = iam.create_access_key(UserName="test-admin")["AccessKey"]
        self.admin = boto3.Session(aws_access_key_id=keys["AccessKeyId"], aws_secret_access_key=keys["SecretAccessKey"], region_name=REGION)
        self.admin.client("s3").create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.documents = roles
        for documents in roles.values():
            self.admin.client("iam").create_role(RoleName=documents.name, AssumeRolePolicyDocument=documents.trust)
            self.put_policy(documents.name, documents.policy)
        self.s3 = {who: self.client_as(who, "s3") for who in roles}

    def put_policy(self, role_name: str, policy: str) -> None:
        self.admin.client("iam").put_role_policy(RoleName=role_name, PolicyName="generated", PolicyDocument=policy)

    def put_as_admin(self, key: str, body: bytes) -> None:
        self.admin.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)

    def client_as(self, who: str, service: str):
        """A `service` client with the credentials a web-identity login to `who`'s role returns (AWS serves it unsigned)."""
        credentials = boto3.client("sts", region_name=REGION).assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{self.documents[who].name}", RoleSessionName="test",
            WebIdentityToken="token")["Credentials"]
        return boto3.client(service, region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"], aws_session_token=credentials["SessionToken"])
