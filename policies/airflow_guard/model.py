"""What every guardrail reads, the same in the policy pack and in the offline plan.

A `Resource` is a resource's type, name, URN and input properties, as CrossGuard hands them to a policy, plus
what the stack around it adds: the parent, the resources each property was computed from (the engine's property
dependencies, which is how a bucket's versioning resource is tied to its bucket before either exists), and the
properties of its provider (default tags live there).

During `pulumi preview` some values are not known yet (an ARN of a resource still to be created). The pack's
adapter turns each into `UNKNOWN`; a check that needs such a value raises `Undecided` and is skipped for that
resource. The offline plan knows every value (the mocks answer them), so it decides everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class Undecided(Exception):
    """A value the check needs is unknown until the update runs."""


def known(value: Any) -> Any:
    """`value`, or Undecided when it is not known yet (a check cannot pass or fail on it)."""
    if value is UNKNOWN:
        raise Undecided()
    return value


def path(props: Any, dotted: str, default: Any = None) -> Any:
    """The value at `a.b.c` of nested props; `default` when any step is missing. A one-element list is stepped into
    (the provider's nested blocks arrive as lists of one in some shapes)."""
    value = props
    for part in dotted.split("."):
        value = known(value)
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = known(value[0])
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return known(value)


def decoded(value: Any) -> Any:
    """Provider properties and policy documents arrive as JSON text; anything else as it is."""
    value = known(value)
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    parent: Optional[str] = None
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    provider_props: Mapping[str, Any] = field(default_factory=dict)

    def get(self, dotted: str, default: Any = None) -> Any:
        return path(self.props, dotted, default)


class Stack:
    """All resources of a stack, for policies that read more than one."""

    def __init__(self, resources: Iterable[Resource]):
        self.resources = list(resources)
        self._by_urn = {r.urn: r for r in self.resources}

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.type in types]

    def sources(self, resource: Resource, prop: str) -> list[Resource]:
        """The resources `resource.props[prop]` was computed from."""
        return [self._by_urn[urn] for urn in resource.property_dependencies.get(prop, ()) if urn in self._by_urn]

    def pointing_at(self, target: Resource, types: Sequence[str], prop: str, name: Any = None) -> list[Resource]:
        """Resources of `types` whose `prop` was computed from `target` (a bucket's policy), or, when `name` is the
        target's literal name, holds that name (a program may write a bucket's name instead of passing its output)."""
        name = known(name)
        return [r for r in self.resources if r.type in types and (
            target.urn in r.property_dependencies.get(prop, ()) or (isinstance(name, str) and known(r.props.get(prop)) == name))]


SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Policy:
    """One guardrail. `check(resource, stack, config)` yields one message per thing wrong with `resource`; `stack`
    is None in the pack's resource policies, which is why a policy that reads other resources says `needs_stack`."""

    name: str
    description: str
    severity: str
    remediation: str
    types: tuple[str, ...]  # the resource types it judges; a type ending in ":" is a prefix ("aws:")
    check: Callable[[Resource, Optional[Stack], Mapping[str, Any]], Iterable[str]]
    checkov: tuple[str, ...] = ()
    needs_stack: bool = False
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # JSON schema per property, with defaults

    def applies_to(self, resource_type: str) -> bool:
        return any(resource_type.startswith(t) if t.endswith(":") else resource_type == t for t in self.types)

    def defaults(self) -> dict[str, Any]:
        return {key: schema["default"] for key, schema in self.config_schema.items() if "default" in schema}


REGISTRY: list[Policy] = []


def policy(name: str, *, description: str, severity: str, remediation: str, types: Sequence[str], checkov: Sequence[str] = (),
           needs_stack: bool = False, config_schema: Optional[Mapping[str, Mapping[str, Any]]] = None):
    """Register the decorated check as a policy of the pack."""
    if severity not in SEVERITIES:
        raise ValueError(f"{name}: severity {severity!r} is not one of {SEVERITIES}")

    def register(check: Callable[..., Iterable[str]]) -> Callable[..., Iterable[str]]:
        if any(p.name == name for p in REGISTRY):
            raise ValueError(f"policy {name} is registered twice")
        REGISTRY.append(Policy(name, description, severity, remediation, tuple(types), check, tuple(checkov), needs_stack,
                               dict(config_schema or {})))
        return check

    return register
