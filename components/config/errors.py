"""pydantic's validation errors, told as one `ConfigError` sentence that names the key and what it allows."""

from __future__ import annotations

from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel

from components.config.fields import REGION_KEY, SECRET_KEYS, ConfigError


def unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] down to the type that decides how a path continues."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union:
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation


def locate(loc: tuple, root: type[BaseModel]) -> tuple[list[str], Any, Any]:
    """Walk an error location through the models: the key's parts, its FieldInfo and its parent model."""
    parts: list[str] = []
    model: Any = root
    annotation: Any = root
    field = None
    for step in loc:
        if step == "[key]":  # pydantic's marker for "the dict key itself", already named by the step before
            continue
        annotation = unwrap(annotation)
        origin = get_origin(annotation)
        if origin is list and isinstance(step, int):
            parts[-1] += f"[{step}]"
            annotation = get_args(annotation)[0]
            continue
        if origin is dict:
            parts.append(str(step))
            annotation = get_args(annotation)[1]
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            parts.append(str(step))
            field = next((f for n, f in model.model_fields.items() if step in (f.alias, n)), None)
            annotation = field.annotation if field is not None else None
            continue
        parts.append(str(step))
    return parts, field, model


def numeric_range(field: Any) -> str:
    metadata = getattr(field, "metadata", [])
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    if low is not None and high is not None:
        return f"an integer from {low} to {high}"
    if low is not None:
        return f"an integer of at least {low}"
    if high is not None:
        return f"an integer of at most {high}"
    return "an integer"


def sentence(error: dict, root: type[BaseModel]) -> ConfigError:
    """pydantic's first error as our sentence: the key as the stack file spells it, and what it allows."""
    parts, field, parent = locate(error["loc"], root)
    key = ".".join(parts)
    kind = error["type"]
    value = error.get("input")
    if parts and parts[0] in SECRET_KEYS:
        value = ConfigError._NOTHING  # never repeat a secret
    if kind == "missing":
        return ConfigError(key, "is required")
    if kind == "extra_forbidden":
        known = ", ".join(sorted(f.alias or n for n, f in parent.model_fields.items() if f.alias != REGION_KEY))
        return ConfigError(key, f"is not a known key; the known keys there are: {known}")
    if kind == "config":
        return ConfigError(key, error["msg"], value)
    if kind.startswith("int") or kind in ("greater_than_equal", "less_than_equal"):
        return ConfigError(key, f"must be {numeric_range(field)}", value)
    phrases = {
        "bool_type": "must be true or false",
        "string_type": "must be a string (quote it in YAML)",
        "list_type": "must be a list",
        "dict_type": "must be a map of keys to values",
        "model_type": "must be a map of keys to values",
        "literal_error": f"must be one of {error.get('ctx', {}).get('expected', '')}",
        "too_short": f"must have at least {error.get('ctx', {}).get('min_length')} item(s)",
        "too_long": f"must have at most {error.get('ctx', {}).get('max_length')} item(s)",
    }
    return ConfigError(key, phrases.get(kind, error["msg"][0].lower() + error["msg"][1:]), value)
