"""Customer-managed KMS keys: one per concern, rotation on, an alias a person can find, and an explicit key policy.

Every key's policy has two parts. The account principal administers the key and nothing more: AWS's documented key
administrators statement, which holds no cryptographic operation. Use is granted per key, to the principals and
services that need it: where the use goes through a service (S3, RDS, ElastiCache, Secrets Manager, EFS, EC2), to the
account principal with `kms:ViaService` and `kms:CallerAccount`, which delegates to IAM: a principal of this account
may use the key only through that service, and only if its own IAM policy also allows it (AWS evaluates the key
policy and the IAM policy together). A role is named in the key policy itself where it calls KMS directly and exists
before the key (the EKS cluster role, Karpenter's controller); services that act without a caller (CloudWatch Logs,
CloudWatch alarms, EventBridge, Auto Scaling's service-linked role) are named with the narrowest condition they allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components import iam

# The longest wait AWS allows before a scheduled key deletion: a deleted key makes its data unreadable.
DELETION_WINDOW_DAYS = 30

# AWS's "key administrators" statement of the default key policy (AWS KMS Developer Guide, "Default key policy",
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html#key-policy-default-allow-administrators),
# with kms:RotateKeyOnDemand, which the guide adds for symmetric keys. None of these encrypts or decrypts: key
# administrators manage the key but "do not have permissions to use the KMS key in cryptographic operations".
# kms:Create* allows kms:CreateAlias and kms:CreateGrant, as AWS documents it: the principal that creates the EKS
# cluster needs kms:CreateGrant without kms:GrantIsForAWSResource (EKS's "Encrypt Kubernetes secrets" guide).
ADMIN_ACTIONS = ("kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
                 "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                 "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand")
# What a storage service (RDS, ElastiCache, EFS, EBS through EC2) does with a key for its caller: the actions AWS's
# managed keys for those services grant through the service.
STORAGE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")
# Envelope encryption of objects and secrets (S3, Secrets Manager): a data key to write, a decryption to read.
ENVELOPE_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# What CloudWatch Logs needs on a key that encrypts a log group (CloudWatch Logs User Guide, "Encrypt log data").
LOGS_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")


@dataclass(frozen=True)
class Account:
    """The account that owns a key."""

    partition: str
    id: str

    @property
    def root(self) -> str:
        """The account principal: the account and the IAM principals its policies allow."""
        return f"arn:{self.partition}:iam::{self.id}:root"


def service_host(service: str, region: str) -> str:
    """The name a service's calls carry in kms:ViaService (s3.eu-west-1.amazonaws.com)."""
    return f"{service}.{region}.amazonaws.com"


def _equals(variable: str, value: str) -> dict:
    return {"test": "StringEquals", "variable": variable, "values": [value]}


def _aws(identifiers: Sequence[pulumi.Input[str]]) -> list[dict]:
    return [{"type": "AWS", "identifiers": list(identifiers)}]


def administration(account: Account) -> dict:
    """The account principal administers the key: ADMIN_ACTIONS, no cryptographic use."""
    # The account principal, not a role, so the key can never become unmanageable: it cannot be deleted, and AWS
    # refuses (the policy lockout safety check) a policy that would not let the caller change it again.
    return {"sid": "AccountAdministers", "actions": list(ADMIN_ACTIONS), "resources": ["*"], "principals": _aws([account.root])}


def through_service(sid: str, account: Account, host: str, actions: Sequence[str]) -> dict:
    """Principals of the account whose IAM policies allow it may use the key through one service, and no other way."""
    # CallerAccount repeats what the account principal already means; it keeps the statement to this account should
    # the principal ever be widened to "*" (as AWS's managed keys write it).
    return {"sid": sid, "actions": list(actions), "resources": ["*"], "principals": _aws([account.root]),
            "conditions": [_equals("kms:ViaService", host), _equals("kms:CallerAccount", account.id)]}


def grants_through_service(sid: str, account: Account, host: str) -> dict:
    """Grants created by one service for the AWS resources it encrypts (its volumes, instances, file systems)."""
    statement = through_service(sid, account, host, ["kms:CreateGrant"])
    statement["conditions"].append({"test": "Bool", "variable": "kms:GrantIsForAWSResource", "values": ["true"]})
    return statement


def to_principals(sid: str, principals: Sequence[pulumi.Input[str]], actions: Sequence[str], conditions: Sequence[dict] = ()) -> dict:
    """Named IAM principals (roles, service-linked roles) may use the key, whatever their IAM policies say."""
    return {"sid": sid, "actions": list(actions), "resources": ["*"], "principals": _aws(principals),
            **({"conditions": list(conditions)} if conditions else {})}


def to_service(sid: str, service: str, actions: Sequence[str], conditions: Sequence[dict] = ()) -> dict:
    """An AWS service principal (logs.<region>.amazonaws.com, events.amazonaws.com) may use the key."""
    return {"sid": sid, "actions": list(actions), "resources": ["*"], "principals": [{"type": "Service", "identifiers": [service]}],
            **({"conditions": list(conditions)} if conditions else {})}


def to_log_groups(sid: str, region: str, log_group_arns: Sequence[pulumi.Input[str]]) -> dict:
    """CloudWatch Logs may use the key for these log groups only (their ARN is the encryption context it sends)."""
    return to_service(sid, f"logs.{region}.amazonaws.com", LOGS_ACTIONS,
                      [{"test": "ArnEquals", "variable": "kms:EncryptionContext:aws:logs:arn", "values": list(log_group_arns)}])


def customer_managed_key(name: str, description: str, parent: pulumi.Resource, protect: bool, account: Account,
                         usage: Sequence[dict]) -> aws.kms.Key:
    """A symmetric key with yearly rotation whose policy is the account's administration and then `usage`."""
    if not usage:
        raise ValueError(f"key {name}: a key policy needs at least one usage statement (who may use the key, and how)")
    key = aws.kms.Key(
        f"{name}-key",
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=DELETION_WINDOW_DAYS,
        policy=iam.document([administration(account), *usage], parent),
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    aws.kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=key.key_id,
                  opts=pulumi.ResourceOptions(parent=parent))
    return key
