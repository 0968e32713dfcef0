"""KMS: customer-managed keys rotate, keep the policy lockout safety check, and have a key policy of their own that
grants no unconditioned use to anyone or to the whole account."""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Iterable, Mapping, Optional, Sequence

from .documents import Statement, as_list, statements
from .model import Resource, Stack, known, policy

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
# The operations that use a key's material (IAM matches action names case-insensitively, with wildcards).
CRYPTOGRAPHIC_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                         "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext")
# ... and creating a grant, which hands them on to whoever the grant names.
USAGE_ACTIONS = CRYPTOGRAPHIC_ACTIONS + ("kms:CreateGrant",)
ACCOUNT_PRINCIPAL = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:root|\d{12}")


@policy("kms-key-rotation-enabled", types=(KEY,), severity="medium", checkov=("CKV_AWS_7",),
        description="Symmetric customer-managed KMS keys rotate their key material every year.",
        remediation="Set enable_key_rotation=True on the key (components/kms.py does for every key of the platform).")
def rotation(key: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    spec = known(key.props.get("customerMasterKeySpec")) or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and known(key.props.get("enableKeyRotation")) is not True:
        yield f"key {key.name} does not rotate"


@policy("kms-key-no-lockout-bypass", types=(KEY,), severity="critical",
        description="KMS keys keep the policy lockout safety check.",
        remediation="Remove bypass_policy_lockout_safety_check: a key policy that locks out the account makes the key, and "
                    "everything encrypted with it, unrecoverable.")
def no_lockout_bypass(key: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if known(key.props.get("bypassPolicyLockoutSafetyCheck")) is True:
        yield f"key {key.name} bypasses the policy lockout safety check"


def _granted(statement: Statement, usage: Sequence[str]) -> list[str]:
    """The statement's entries that allow one of `usage` (for NotAction, the usage actions it does not exclude)."""
    def matches(pattern: str, action: str) -> bool:
        return fnmatch.fnmatchcase(action.lower(), str(pattern).lower())
    if statement.not_actions:
        return [a for a in usage if not any(matches(n, a) for n in statement.not_actions)]
    return [a for a in statement.actions if any(matches(a, u) for u in usage)]


def _aws_principals(statement: Statement) -> list[str]:
    principal = statement.principal
    if principal == "*":
        return ["*"]
    return [str(p) for p in as_list(principal.get("AWS"))] if isinstance(principal, Mapping) else []


@policy("kms-key-explicit-policy", types=(KEY, KEY_POLICY), severity="high",
        description="KMS keys have a key policy of their own, whose usage grants to anyone or to the whole account are conditioned.",
        remediation="Build the key with components/kms.py customer_managed_key: the account principal gets AWS's key administrator "
                    "actions only, and each use is granted to the roles or services that need it, through one service "
                    "(kms:ViaService and kms:CallerAccount) or for one resource (an encryption context, aws:SourceArn). Creating "
                    "grants stays with the administrators, as AWS's key administrator statement (kms:Create*) has it.")
def explicit_key_policy(resource: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    what = f"key {resource.name}" if resource.type == KEY else f"key policy {resource.name}"
    document = known(resource.props.get("policy"))
    if not document:
        yield f"{what} has no key policy: AWS's default lets every principal of the account that IAM allows use it"
        return
    for statement in statements(document):
        if not statement.allows or statement.conditions:
            continue
        principals = _aws_principals(statement)
        anyone = "*" in principals or statement.not_principal is not None
        if anyone and (granted := _granted(statement, USAGE_ACTIONS)):
            yield f"{what}: {statement.label()} lets any principal {', '.join(granted)} with no condition"
        elif any(ACCOUNT_PRINCIPAL.fullmatch(p) for p in principals) and (granted := _granted(statement, CRYPTOGRAPHIC_ACTIONS)):
            yield (f"{what}: {statement.label()} lets the account {', '.join(granted)} with no condition: any principal "
                   "IAM allows may use the key directly")
