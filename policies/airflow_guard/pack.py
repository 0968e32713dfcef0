"""The guardrails as CrossGuard policies: a policy that reads only its resource becomes a ResourceValidationPolicy,
one that reads others (a bucket's versioning resource, an instance's alarms) a StackValidationPolicy.

Values that are unknown during preview reach the checks as UNKNOWN; a check that needs one is skipped for that
resource (a resource policy reports itself not applicable), where the SDK would skip the whole stack policy.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC, Sequence as SequenceABC
from typing import Any, Mapping, Optional

from pulumi_policy import (PolicyConfigSchema, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity,
                           StackValidationArgs, StackValidationPolicy)
from pulumi_policy.proxy import UnknownValueError

from .catalog import POLICIES
from .model import UNKNOWN, Policy, Resource, Stack, Undecided

NOT_DECIDABLE = "a value it reads is unknown until the update runs"


def plain(value: Any) -> Any:
    """Props as plain dicts and lists, each value unknown during preview replaced by UNKNOWN."""
    if isinstance(value, MappingABC):
        result = {}
        for key in value:
            try:
                result[key] = plain(value[key])
            except UnknownValueError:
                result[key] = UNKNOWN
        return result
    if isinstance(value, SequenceABC) and not isinstance(value, (str, bytes)):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def _provider_props(provider: Any) -> Mapping[str, Any]:
    return plain(provider.props) if provider is not None else {}


def _message(policy: Policy, text: str) -> str:
    return f"{text}.\nFix: {policy.remediation}"


def _config(policy: Policy, given: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    return {**policy.defaults(), **(given or {})}


def _resource_policy(policy: Policy) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if not policy.applies_to(args.resource_type):
            return
        resource = Resource(args.resource_type, args.name, args.urn, plain(args.props), provider_props=_provider_props(args.provider))
        try:
            messages = list(policy.check(resource, None, _config(policy, args.get_config())))
        except Undecided:
            args.not_applicable(NOT_DECIDABLE)
        for text in messages:
            report(_message(policy, text), args.urn)

    return ResourceValidationPolicy(policy.name, policy.description, validate=validate, **_metadata(policy))


def _stack_policy(policy: Policy) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        stack = Stack(Resource(r.resource_type, r.name, r.urn, plain(r.props), r.parent.urn if r.parent else None,
                               {key: [d.urn for d in deps] for key, deps in r.property_dependencies.items()},
                               _provider_props(r.provider)) for r in args.resources)
        config = _config(policy, args.get_config())
        for resource in stack.resources:
            if not policy.applies_to(resource.type):
                continue
            try:
                messages = list(policy.check(resource, stack, config))
            except Undecided:
                continue
            for text in messages:
                report(_message(policy, text), resource.urn)

    return StackValidationPolicy(policy.name, policy.description, validate=validate, **_metadata(policy))


def _metadata(policy: Policy) -> dict[str, Any]:
    return {"severity": Severity(policy.severity), "remediation_steps": policy.remediation,
            "tags": [f"checkov:{check}" for check in policy.checkov],
            "config_schema": PolicyConfigSchema(dict(policy.config_schema)) if policy.config_schema else None}


def crossguard_policies() -> list[Any]:
    return [_stack_policy(p) if p.needs_stack else _resource_policy(p) for p in POLICIES]
