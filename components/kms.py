"""Customer-managed KMS keys: one per concern, rotation on, an alias a person can find."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

# The longest wait AWS allows before a scheduled key deletion: a deleted key makes its data unreadable.
DELETION_WINDOW_DAYS = 30


def customer_managed_key(name: str, description: str, parent: pulumi.Resource, protect: bool,
                         policy: Optional[pulumi.Input[str]] = None) -> aws.kms.Key:
    """A symmetric key with yearly rotation; without `policy`, AWS's default (the account's IAM policies decide)."""
    key = aws.kms.Key(
        f"{name}-key",
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=DELETION_WINDOW_DAYS,
        policy=policy,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect),
    )
    aws.kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=key.key_id,
                  opts=pulumi.ResourceOptions(parent=parent))
    return key
