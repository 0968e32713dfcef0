"""Evaluate the pack over a stack's resources, with a policy config file's enforcement levels, as `pulumi preview
--policy-pack policies --policy-pack-config <file>` would.

A config file maps policy names (or `all`) to a level ("advisory", "mandatory", "disabled"; "remediate" counts as
mandatory, as the SDK treats a policy without a remediation) or to an object with `enforcementLevel` and the
policy's own properties. A policy's level is its own entry's, else `all`'s, else the pack's (advisory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from .catalog import POLICIES
from .model import Policy, Resource, Stack, Undecided

PACK_LEVEL = "advisory"
LEVELS = ("advisory", "mandatory", "remediate", "disabled")
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class PolicyConfigError(ValueError):
    """A policy config file the pack would refuse; the message is one sentence naming the key."""


@dataclass(frozen=True)
class Setting:
    level: str
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    policy: Policy
    level: str
    resource: Resource
    message: str

    @property
    def mandatory(self) -> bool:
        return self.level in ("mandatory", "remediate")


def _level(entry: Any, where: str) -> Optional[str]:
    level = entry.get("enforcementLevel") if isinstance(entry, Mapping) else entry
    if level is not None and level not in LEVELS:
        raise PolicyConfigError(f"{where} has enforcement level {level!r}; allowed: {', '.join(LEVELS)}.")
    return level


def _check_properties(policy: Policy, properties: Mapping[str, Any]) -> None:
    """Validate a policy's properties against its config schema, as the Pulumi CLI does before a preview."""
    if not properties:
        return
    import jsonschema  # only when a config sets properties: the import costs a plan 30 ms

    schema = {"type": "object", "properties": dict(policy.config_schema), "additionalProperties": False}
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(dict(properties)))
    if error is not None:
        where = ".".join([policy.name, *map(str, error.absolute_path)])
        allowed = ", ".join(policy.config_schema) or "none"
        raise PolicyConfigError(f"{where}: {error.message} (its properties: {allowed}).")


def settings(config: Mapping[str, Any], policies: Iterable[Policy] = POLICIES) -> dict[str, Setting]:
    """Each policy's level and properties under `config`; PolicyConfigError for anything the CLI would refuse."""
    policies = list(policies)
    names = {p.name for p in policies}
    for key in config:
        if key != "all" and key not in names:
            raise PolicyConfigError(f"policy config key {key!r} is not a policy of this pack (docs/policies.md lists them).")
    everyone = _level(config.get("all"), "all")
    result = {}
    for policy in policies:
        entry = config.get(policy.name)
        properties = {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, Mapping) else {}
        _check_properties(policy, properties)
        level = _level(entry, policy.name) or everyone or PACK_LEVEL
        result[policy.name] = Setting(level, {**policy.defaults(), **properties})
    return result


def load_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text())
    except ValueError as error:
        raise PolicyConfigError(f"{path.name} is not valid JSON ({error}).") from None
    if not isinstance(config, dict):
        raise PolicyConfigError(f"{path.name} must hold a JSON object of policy names.")
    return config


def stack_config(stack: str) -> dict[str, Any]:
    """policies/config/<stack>.json when the repository has one; the pack's defaults otherwise."""
    path = CONFIG_DIR / f"{stack}.json"
    return load_config(path) if path.is_file() else {}


def evaluate(resources: Iterable[Resource], config: Mapping[str, Any], policies: Iterable[Policy] = POLICIES) -> list[Violation]:
    """Every violation of every enabled policy, in policy then resource order."""
    policies = list(policies)
    stack = Stack(resources)
    chosen = settings(config, policies)
    found = []
    for policy in policies:
        setting = chosen[policy.name]
        if setting.level == "disabled":
            continue
        for resource in stack.resources:
            if not policy.applies_to(resource.type):
                continue
            try:
                messages = list(policy.check(resource, stack, setting.properties))
            except Undecided:
                continue
            found += [Violation(policy, setting.level, resource, message) for message in messages]
    return found
