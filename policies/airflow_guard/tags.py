"""Tags: every taggable AWS resource carries the environment and owner tags (its own, or its provider's defaults)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from .model import Resource, Stack, decoded, known, policy

# Generated from pulumi-aws's resource classes (python -m tools.taggable_types --write): the types with a `tags` input.
TAGGABLE_FILE = Path(__file__).with_name("taggable_types.txt")


@lru_cache(maxsize=1)
def taggable_types() -> frozenset[str]:
    return frozenset(line.strip() for line in TAGGABLE_FILE.read_text().splitlines() if line.strip() and not line.startswith("#"))


def effective_tags(resource: Resource) -> dict[str, Any]:
    defaults = decoded(resource.provider_props.get("defaultTags")) or {}
    default_tags = decoded(defaults.get("tags")) if isinstance(defaults, Mapping) else None
    return {**(default_tags or {}), **(known(resource.props.get("tags")) or {})}


@policy("aws-required-tags", types=("aws:",), severity="low",
        description="Every taggable AWS resource carries the environment and owner tags.",
        remediation="Create AWS resources through the platform's provider (its default_tags carry environment, owner, "
                    "managed-by and the stack's `tags`), or set the tags on the resource.",
        config_schema={"tags": {"type": "array", "items": {"type": "string"}, "default": ["environment", "owner"],
                                "description": "Tag keys every taggable resource must have."}})
def required_tags(resource: Resource, _: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    if resource.type not in taggable_types():
        return
    tags = effective_tags(resource)
    missing = [key for key in config["tags"] if not tags.get(key)]
    if missing:
        yield f"{resource.name} has no {', '.join(missing)} tag"
