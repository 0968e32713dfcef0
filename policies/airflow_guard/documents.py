"""IAM policy documents as the guardrails read them: statements with every field as a list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .model import decoded, known

# Operations whose name starts with one of these only read (the IAM "Read" and "List" access levels follow this
# naming throughout AWS); anything else may change something.
READ_VERBS = ("Describe", "List", "Get", "Head", "Search", "Lookup", "Query", "Scan", "BatchGet", "View", "Check", "Validate",
              "Estimate", "Preview", "Simulate")


def as_list(value: Any) -> list[Any]:
    value = known(value)
    if value is None:
        return []
    return [known(v) for v in value] if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    principal: Any
    conditions: Mapping[str, Mapping[str, list[str]]]
    not_principal: Any = None

    @property
    def allows(self) -> bool:
        return self.effect == "Allow"

    def label(self) -> str:
        return f"statement {self.sid!r}" if self.sid else "a statement"


def statements(document: Any) -> list[Statement]:
    parsed = decoded(document)
    if not isinstance(parsed, Mapping):
        return []
    found = []
    for raw in as_list(parsed.get("Statement")):
        conditions = {test: {key: as_list(values) for key, values in known(pairs).items()}
                      for test, pairs in known(raw.get("Condition") or {}).items()}
        found.append(Statement(sid=known(raw.get("Sid", "")) or "", effect=known(raw.get("Effect", "")),
                               actions=tuple(as_list(raw.get("Action"))), not_actions=tuple(as_list(raw.get("NotAction"))),
                               resources=tuple(as_list(raw.get("Resource"))), not_resources=tuple(as_list(raw.get("NotResource"))),
                               principal=known(raw.get("Principal")), conditions=conditions,
                               not_principal=known(raw.get("NotPrincipal"))))
    return found


def is_wildcard_action(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def is_read_action(action: str) -> bool:
    operation = action.partition(":")[2]
    return operation.startswith(READ_VERBS)


def condition_values(statement: Statement, key_suffix: str) -> dict[str, list[str]]:
    """The values each condition operator tests a key ending in `key_suffix` against, by operator."""
    return {test: values for test, pairs in statement.conditions.items() for key, values in pairs.items() if key.endswith(key_suffix)}
