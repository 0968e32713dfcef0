"""IAM: no wildcard actions, no wildcard resources on writes, team CI roles confined to their prefix, web-identity
trust bound to one repository (GitHub) or to named service accounts of one namespace (EKS IRSA)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from .documents import Statement, as_list, condition_values, is_read_action, is_wildcard_action, statements
from .model import Resource, Stack, known, policy

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENTS = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")
IDENTITY_POLICIES = (ROLE_POLICY, "aws:iam/policy:Policy", "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy")
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
GITHUB = "token.actions.githubusercontent.com"
SERVICE_ACCOUNT = re.compile(r"system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-a-z0-9.]*[a-z0-9])?)")
GITHUB_SUBJECT = re.compile(r"repo:([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+):\S+")
# What a team's CI role may do besides its S3 prefix: encrypt and decrypt the objects it writes.
KMS_DATA_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt")


def documents(resource: Resource) -> list[Any]:
    """The identity policy documents a resource carries (a role's inline policies included)."""
    if resource.type == ROLE:
        return [known(p.get("policy")) for p in as_list(resource.props.get("inlinePolicies")) if known(p.get("policy"))]
    document = known(resource.props.get("policy"))
    return [document] if document else []


def _actions(statement: Statement) -> str:
    return ", ".join(statement.actions) if statement.actions else "NotAction " + ", ".join(statement.not_actions)


@policy("iam-no-wildcard-action", types=IDENTITY_POLICIES + (ROLE,), severity="critical", checkov=("CKV_AWS_62", "CKV_AWS_63", "CKV_AWS_289"),
        description="IAM policies name the actions they allow: no '*', no 'service:*', no Allow with NotAction.",
        remediation="List the actions the principal needs (aws.iam.get_policy_document in components/iam.py builds every document "
                    "of this program that way).")
def no_wildcard_action(resource: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    for document in documents(resource):
        for statement in statements(document):
            if not statement.allows:
                continue
            wild = [a for a in statement.actions if is_wildcard_action(a)]
            if wild:
                yield f"{resource.name}: {statement.label()} allows {', '.join(wild)}"
            if statement.not_actions:
                yield f"{resource.name}: {statement.label()} allows everything but {', '.join(statement.not_actions)} (NotAction)"


@policy("iam-no-wildcard-resource-on-write", types=IDENTITY_POLICIES + (ROLE,), severity="high",
        checkov=("CKV_AWS_355", "CKV_AWS_290"),
        description="IAM policies that allow writes name the resources they apply to.",
        remediation="Replace Resource '*' with the ARNs the writes need (a bucket prefix, a key, a secret path); read-only "
                    "actions such as Describe* may keep '*'.",
        config_schema={"exemptActions": {"type": "array", "items": {"type": "string"}, "default": [],
                                         "description": "Write actions that AWS only authorises on '*'."}})
def no_wildcard_resource_on_write(resource: Resource, _: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    exempt = set(config.get("exemptActions", []))
    for document in documents(resource):
        for statement in statements(document):
            if not statement.allows or not ("*" in statement.resources or statement.not_resources):
                continue
            writes = [a for a in statement.actions if not is_read_action(a) and a not in exempt]
            if writes:
                yield f"{resource.name}: {statement.label()} allows {', '.join(writes)} on every resource"


def _team_policies(role: Resource, stack: Stack) -> tuple[list[Any], list[Resource]]:
    inline = stack.pointing_at(role, (ROLE_POLICY,), "role", role.props.get("name"))
    attached = stack.pointing_at(role, ATTACHMENTS, "role") + stack.pointing_at(role, ATTACHMENTS, "roles")
    return [d for r in inline for d in documents(r)] + documents(role), attached


def _object_key(arn: str) -> Optional[str]:
    """The key part of an S3 object ARN (arn:aws:s3:::bucket/key), None for anything else."""
    if not arn.startswith("arn:aws:s3:::") or "/" not in arn:
        return None
    return arn.split("/", 1)[1]


@policy("iam-team-role-own-prefix", types=(ROLE,), needs_stack=True, severity="critical",
        description="A team's CI role can write only under its own prefix of the DAG bucket.",
        remediation="Build team roles with DagStorage: s3:ListBucket with an s3:prefix condition on teams/<team>/, object "
                    "actions on arn:aws:s3:::<bucket>/teams/<team>/*, KMS data-key actions, and nothing attached.",
        config_schema={"teamTag": {"type": "string", "default": "team", "description": "The role tag that names the team."},
                       "prefix": {"type": "string", "default": "teams/{team}/", "description": "The team's key prefix."}})
def team_role_own_prefix(role: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    team = known((known(role.props.get("tags")) or {}).get(config["teamTag"]))
    if not team:
        return
    prefix = config["prefix"].format(team=team)
    docs, attached = _team_policies(role, stack)
    for attachment in attached:
        yield f"team role {role.name} has {known(attachment.props.get('policyArn'))} attached"
    for arn in as_list(role.props.get("managedPolicyArns")):
        yield f"team role {role.name} has {arn} attached"
    for document in docs:
        for statement in statements(document):
            if not statement.allows:
                continue
            if statement.not_actions or statement.not_resources:
                yield f"team role {role.name}: {statement.label()} uses NotAction or NotResource"
            for action in statement.actions:
                if action == "s3:ListBucket":
                    prefixes = [v for values in condition_values(statement, "s3:prefix").values() for v in values]
                    if not prefixes or any(not str(p).startswith(prefix) for p in prefixes):
                        yield f"team role {role.name} may list beyond {prefix} (s3:prefix {prefixes or 'unrestricted'})"
                elif action.startswith("s3:") or action == "*":
                    outside = [r for r in statement.resources if not (_object_key(r) or "").startswith(prefix)]
                    if outside:
                        yield f"team role {role.name} may {action} on {', '.join(outside)}, outside {prefix}"
                elif not is_read_action(action) and not action.startswith(KMS_DATA_KEY_ACTIONS):
                    yield f"team role {role.name} may also {action}"


def _web_identity_statements(role: Resource, marker: str) -> list[Statement]:
    found = []
    for statement in statements(role.props.get("assumeRolePolicy")):
        federated = as_list((statement.principal or {}).get("Federated")) if isinstance(statement.principal, Mapping) else []
        keys = [key for pairs in statement.conditions.values() for key in pairs]
        if statement.allows and WEB_IDENTITY in statement.actions and (any(marker in f for f in federated) or any(marker in k for k in keys)):
            found.append(statement)
    return found


def _subjects(statement: Statement) -> tuple[list[str], list[str]]:
    """The exact (StringEquals) subjects, and the operators other than StringEquals that test the subject."""
    tests = condition_values(statement, ":sub")
    return [str(v) for v in tests.get("StringEquals", [])], sorted(t for t in tests if t != "StringEquals")


def _audience_problem(statement: Statement) -> Optional[str]:
    audiences = condition_values(statement, ":aud").get("StringEquals", [])
    return None if audiences == ["sts.amazonaws.com"] else f"audience {audiences or 'unchecked'}, not exactly sts.amazonaws.com"


@policy("iam-github-oidc-trust-one-repository", types=(ROLE,), severity="critical",
        description="A role GitHub Actions can assume trusts exact subjects of one repository.",
        remediation="Trust token.actions.githubusercontent.com:sub with StringEquals on "
                    "'repo:<org>/<repo>:ref:refs/heads/<branch>' (or an environment) and :aud 'sts.amazonaws.com'.")
def github_trust(role: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    for statement in _web_identity_statements(role, GITHUB):
        exact, others = _subjects(statement)
        if others:
            yield f"role {role.name} tests the GitHub subject with {', '.join(others)}: any matching repository or branch may assume it"
        if not exact:
            yield f"role {role.name} trusts GitHub without an exact subject"
        wild = [s for s in exact if "*" in s or "?" in s]
        if wild:
            yield f"role {role.name} trusts wildcard subjects {', '.join(wild)}"
        repositories = {m.group(1) if (m := GITHUB_SUBJECT.fullmatch(s)) else s for s in exact}
        if len(repositories) > 1:
            yield f"role {role.name} trusts {len(repositories)} repositories: {', '.join(sorted(repositories))}"
        problem = _audience_problem(statement)
        if problem:
            yield f"role {role.name} trusts GitHub with {problem}"


@policy("iam-irsa-trust-one-namespace", types=(ROLE,), severity="critical",
        description="A role pods can assume (IRSA) trusts named service accounts of one namespace.",
        remediation="Trust <issuer>:sub with StringEquals on 'system:serviceaccount:<namespace>:<name>' for each service "
                    "account, all in one namespace, and <issuer>:aud 'sts.amazonaws.com' (components/iam.py irsa_trust).")
def irsa_trust(role: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    for statement in _web_identity_statements(role, "oidc.eks."):
        exact, others = _subjects(statement)
        if others:
            yield f"role {role.name} tests the service account with {', '.join(others)}"
        if not exact:
            yield f"role {role.name} trusts the cluster's OIDC issuer without naming a service account"
        matches = [SERVICE_ACCOUNT.fullmatch(s) for s in exact]
        wrong = [s for s, m in zip(exact, matches) if m is None]
        if wrong:
            yield f"role {role.name} trusts subjects that are not one service account: {', '.join(wrong)}"
        namespaces = sorted({m.group(1) for m in matches if m})
        if len(namespaces) > 1:
            yield f"role {role.name} trusts service accounts of {len(namespaces)} namespaces: {', '.join(namespaces)}"
        problem = _audience_problem(statement)
        if problem:
            yield f"role {role.name} trusts the cluster with {problem}"


@policy("iam-role-no-policy-management-conflicts", types=(ROLE,), needs_stack=True, severity="low",
        description="A role's policies are managed one way: inline arguments or separate resources, not both.",
        remediation="Move the role's inline_policies into aws.iam.RolePolicy resources (or its managed_policy_arns into "
                    "RolePolicyAttachment resources); with both, each update undoes the other.")
def no_policy_management_conflicts(role: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    if as_list(role.props.get("inlinePolicies")) and stack.pointing_at(role, (ROLE_POLICY,), "role"):
        yield f"role {role.name} has inline_policies and separate RolePolicy resources"
    if as_list(role.props.get("managedPolicyArns")) and stack.pointing_at(role, ATTACHMENTS, "role"):
        yield f"role {role.name} has managed_policy_arns and separate policy attachments"
