"""Helm values as the provider hands them to Helm."""

from __future__ import annotations

from typing import Any


def merge_maps(a: dict, b: dict) -> dict:
    """Helm's MergeMaps, which the provider applies: `b` over `a`, maps merged key by key, anything else replaced (a null
    included, which Helm then reads as "delete the chart's default")."""
    out = dict(a)
    for key, value in b.items():
        out[key] = merge_maps(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def at_path(dotted: str, value: Any) -> dict[str, Any]:
    """`value` nested under a dotted values path: at_path("a.b", v) is {"a": {"b": v}}."""
    for key in reversed(dotted.split(".")):
        value = {key: value}
    return value
