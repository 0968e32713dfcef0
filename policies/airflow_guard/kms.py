"""KMS: customer-managed keys rotate, and keep the policy lockout safety check."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .model import Resource, Stack, known, policy

KEY = "aws:kms/key:Key"


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
