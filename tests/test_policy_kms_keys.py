"""Tests the pack's key-policy guardrail on compliant and violating keys, asserting the exact messages."""

from __future__ import annotations

import json
from typing import Any


from policies.airflow_guard.catalog import BY_NAME
from policies.airflow_guard.engine import evaluate
from policies.airflow_guard.model import UNKNOWN
from tests.test_policy_rules import doc, messages, res

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
ROOT = "arn:aws:iam::123456789012:root"
ROLE = "arn:aws:iam::123456789012:role/airflow-prod-cluster-role-be5b9f3"
# AWS's key administrators statement, as components/kms.py writes it for the account.
ADMIN = {"Sid": "AccountAdministers", "Effect": "Allow", "Resource": "*", "Principal": {"AWS": ROOT}, "Action": [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*",
    "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"]}
THROUGH_S3 = {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com", "kms:CallerAccount": "123456789012"}}


def grant(principal: Any, action: Any, condition: dict[str, Any] | None = None, sid: str = "", **extra: Any) -> dict[str, Any]:
    """An Allow statement of a key policy."""
    return {**({"Sid": sid} if sid else {}), "Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*",
            **({"Condition": condition} if condition else {}), **extra}


def key(name: str, *statements: dict[str, Any]) -> Any:
    return res(KEY, name, {"enableKeyRotation": True, "policy": doc(*statements)})


CASES = {
    "kms-key-explicit-policy": (
        [key("dags", ADMIN, grant({"AWS": ROOT}, ["kms:GenerateDataKey", "kms:Decrypt"], THROUGH_S3, "AccountUsesThroughS3")),
         # A named role, a service principal and AWS's managed-key form ("*" with the account and the service) are fine.
         key("cluster", ADMIN, grant({"AWS": ROLE}, ["kms:Encrypt", "kms:Decrypt"]),
             grant({"Service": "cloudwatch.amazonaws.com"}, ["kms:Decrypt", "kms:GenerateDataKey*"]),
             grant({"AWS": "*"}, ["kms:Encrypt", "kms:CreateGrant"], THROUGH_S3),
             {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
         res(KEY_POLICY, "queue", {"keyId": "1111", "policy": doc(ADMIN)})],
        [res(KEY, "broker", {"enableKeyRotation": True}),
         key("legacy", grant({"AWS": ROOT}, "kms:*", sid="AccountAdministers")),
         key("open", ADMIN, grant("*", "kms:Decrypt", sid="Everyone"), grant({"AWS": ["*"]}, ["kms:Create*", "kms:DescribeKey"]),
             {"Effect": "Allow", "NotPrincipal": {"AWS": ROLE}, "Action": "kms:GenerateDataKey", "Resource": "*"}),
         key("account", grant({"AWS": "123456789012"}, ["kms:describekey", "kms:reencrypt*"]),
             {"Effect": "Allow", "Principal": {"AWS": ROOT}, "NotAction": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:Encrypt"],
              "Resource": "*"}),
         res(KEY_POLICY, "queue", {"keyId": "1111", "policy": doc(grant({"AWS": [ROLE, ROOT]}, "kms:Decrypt"))})],
        ["key broker has no key policy: AWS's default lets every principal of the account that IAM allows use it",
         "key legacy: statement 'AccountAdministers' lets the account kms:* with no condition: any principal IAM allows may use the "
         "key directly",
         "key open: statement 'Everyone' lets any principal kms:Decrypt with no condition",
         "key open: a statement lets any principal kms:Create* with no condition",
         "key open: a statement lets any principal kms:GenerateDataKey with no condition",
         "key account: a statement lets the account kms:reencrypt* with no condition: any principal IAM allows may use the key directly",
         "key account: a statement lets the account kms:ReEncryptFrom, kms:ReEncryptTo with no condition: any principal IAM allows may "
         "use the key directly",
         "key policy queue: a statement lets the account kms:Decrypt with no condition: any principal IAM allows may use the key "
         "directly"]),
}


class TestExplicitKeyPolicy:
    """Tests what the key-policy guardrail counts as use, and what it leaves alone."""

    def test_administration_as_aws_documents_it_passes(self):
        """The key administrators statement holds kms:Create* (CreateAlias, CreateGrant) and no cryptographic operation."""
        assert messages("kms-key-explicit-policy", [key("k", ADMIN)]) == []

    def test_a_condition_makes_any_grant_acceptable(self):
        """Whatever the principal, a conditioned statement is left to the component tests (they assert each condition)."""
        assert messages("kms-key-explicit-policy", [key("k", ADMIN, grant("*", "kms:*", THROUGH_S3))]) == []

    def test_grants_outside_the_root_and_anyone_are_not_judged(self):
        """A role or a service named in the key policy is a deliberate grant: this policy does not second-guess it."""
        assert messages("kms-key-explicit-policy", [key("k", ADMIN, grant({"AWS": ROLE}, "kms:*"),
                                                        grant({"Service": "logs.eu-west-1.amazonaws.com"}, "kms:Decrypt*"))]) == []

    def test_unknown_policy_is_undecided(self):
        """A policy rendered from values unknown during preview skips the key instead of reporting it as missing."""
        unknown = res(KEY, "k", {"enableKeyRotation": True, "policy": UNKNOWN})
        assert [v.message for v in evaluate([unknown], {}, policies=[BY_NAME["kms-key-explicit-policy"]])] == []

    def test_a_policy_that_is_not_a_document_has_no_statement(self):
        """Text that is not a JSON document is not a grant: nothing to report, and no crash."""
        assert messages("kms-key-explicit-policy", [res(KEY, "k", {"policy": json.dumps("not a document")})]) == []
