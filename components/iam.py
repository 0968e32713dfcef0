"""Small builders for IAM documents, rendered by aws.iam.getPolicyDocument (never hand-written JSON).

Every trust policy the platform writes is one of three shapes: an AWS service, a Kubernetes service account
through the cluster's OIDC provider (IRSA), or one branch of one GitHub repository through GitHub's OIDC
provider. Each web-identity trust pins both the audience and the exact subject, with no wildcard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"


@dataclass
class OidcIssuer:
    """An OIDC provider registered in IAM, and its issuer host (the prefix of its condition keys)."""

    provider_arn: pulumi.Input[str]
    host: pulumi.Input[str]


def document(statements: Sequence[dict], parent: pulumi.Resource) -> pulumi.Output[str]:
    """The policy JSON of `statements` (getPolicyDocument's statement arguments).

    The statements are plain dicts with one-word keys only (actions, resources, principals, conditions...):
    invoke arguments given as dicts reach the provider with their keys as written, untranslated.
    """
    return aws.iam.get_policy_document_output(
        statements=statements, opts=pulumi.InvokeOutputOptions(parent=parent)).json


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def service_trust(service: str, parent: pulumi.Resource, actions: Sequence[str] = ("sts:AssumeRole",)) -> pulumi.Output[str]:
    return document([{
        "actions": list(actions),
        "principals": [{"type": "Service", "identifiers": [service]}],
    }], parent)


def _web_identity_trust(issuer: OidcIssuer, subjects: Sequence[str], parent: pulumi.Resource) -> pulumi.Output[str]:
    return document([{
        "actions": ["sts:AssumeRoleWithWebIdentity"],
        "principals": [{"type": "Federated", "identifiers": [issuer.provider_arn]}],
        "conditions": [
            {"test": "StringEquals", "variable": pulumi.Output.concat(issuer.host, ":aud"), "values": [STS_AUDIENCE]},
            {"test": "StringEquals", "variable": pulumi.Output.concat(issuer.host, ":sub"), "values": list(subjects)},
        ],
    }], parent)


def irsa_trust(issuer: OidcIssuer, namespace: str, service_accounts: Sequence[str], parent: pulumi.Resource) -> pulumi.Output[str]:
    """Trust for pods running as the listed service accounts of one namespace."""
    subjects = [f"system:serviceaccount:{namespace}:{account}" for account in service_accounts]
    return _web_identity_trust(issuer, subjects, parent)


def github_trust(provider_arn: pulumi.Input[str], repository: str, branch: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """Trust for GitHub Actions runs of one repository on one branch (pull requests cannot publish)."""
    issuer = OidcIssuer(provider_arn=provider_arn, host=GITHUB_OIDC_HOST)
    return _web_identity_trust(issuer, [f"repo:{repository}:ref:refs/heads/{branch}"], parent)


def attach_managed_policies(role: aws.iam.Role, partition: str, names: Sequence[str], parent: pulumi.Resource,
                            prefix: str) -> list[aws.iam.RolePolicyAttachment]:
    return [aws.iam.RolePolicyAttachment(
        f"{prefix}-{name.lower()}", role=role.name, policy_arn=managed_policy_arn(partition, name),
        opts=pulumi.ResourceOptions(parent=parent)) for name in names]
