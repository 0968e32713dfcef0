"""CloudWatch log groups the platform declares itself, before the AWS service that writes them would create them
unencrypted and never expiring: a retention from config, and a customer-managed key of their own whose policy lets
CloudWatch Logs use it for exactly these groups (the `kms:EncryptionContext:aws:logs:arn` condition).
"""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_aws as aws

from components import kms


def log_group_arn(partition: str, region: str, account_id: str, group_name: str) -> str:
    """The ARN CloudWatch Logs puts into the encryption context of a group's data (no trailing `:*`)."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{group_name}"


def encrypted_log_groups(name: str, description: str, group_names: Mapping[str, str], retention_days: int, partition: str, region: str,
                         account_id: str, parent: pulumi.Resource, protect: bool) -> tuple[aws.kms.Key, dict[str, aws.cloudwatch.LogGroup]]:
    """One key (`<name>-key`) and, per entry of `group_names` (suffix -> group name), a log group `<name>-<suffix>` encrypted with it."""
    arns = [log_group_arn(partition, region, account_id, group_name) for group_name in group_names.values()]
    key = kms.customer_managed_key(name, description, parent, protect, kms.Account(partition, account_id),
                                   [kms.to_log_groups("LogsEncryptTheseLogGroups", region, arns)])
    groups = {suffix: aws.cloudwatch.LogGroup(f"{name}-{suffix}", name=group_name, retention_in_days=retention_days, kms_key_id=key.arn,
                                              opts=pulumi.ResourceOptions(parent=parent))
              for suffix, group_name in group_names.items()}
    return key, groups
