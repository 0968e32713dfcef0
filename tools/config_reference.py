"""docs/configuration.md's reference table, generated from the config models so it cannot drift from them.

    python -m tools.config_reference          # print the table
    python -m tools.config_reference --write  # replace the table in docs/configuration.md
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config import PROJECT, REGION_KEY, PlatformConfig, unwrap
from tools.doc_sections import DOCS, Section, cell, main


def _bounds(field: FieldInfo) -> str:
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    if low is not None and high is not None:
        return f" {low}–{high}"
    return f" ≥ {low}" if low is not None else ""


def _type(annotation: Any, field: FieldInfo) -> str:
    annotation = unwrap(annotation)
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in get_args(annotation))
    if origin is list:
        return f"list of {_type(get_args(annotation)[0], FieldInfo())}"
    if origin is dict:
        return "map of string to string"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer" + _bounds(field)
    if annotation is str:
        return "string"
    return "map"


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra or {}
    if isinstance(extra, dict) and "defaultText" in extra:
        return str(extra["defaultText"])
    if field.default is not PydanticUndefined:
        return f"`{json.dumps(field.default)}`" if field.default is not None else "unset"
    if field.default_factory is not None:
        value = field.default_factory()
        return f"`{json.dumps(value)}`" if not isinstance(value, BaseModel) else "see below"
    return "**required**"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows, nested = [], []
    for name, field in model.model_fields.items():
        key = field.alias or name
        full = key if ":" in key else (f"{prefix}.{key}" if prefix else f"{PROJECT}:{key}")
        annotation = unwrap(field.annotation)
        item = get_args(annotation)[0] if get_origin(annotation) is list else None
        target = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else (
            item if isinstance(item, type) and issubclass(item, BaseModel) else None)
        if target is not None:
            kind = "list of maps" if item is not None else "map"
            rows.append(f"| `{full}` | {kind} | {_default(field)} | {cell(field.description)} |")
            nested.append((target, f"{full}[]" if item is not None else full))
        else:
            rows.append(f"| `{full}` | {_type(field.annotation, field)} | {_default(field)} | {cell(field.description)} |")
    # Keys of one model that share a model (images.<name>) have their keys listed once, under <name>.
    shared = {target for target, _ in nested if sum(t is target for t, _ in nested) > 1}
    for target in dict.fromkeys(t for t, _ in nested if t in shared):
        rows.extend(_rows(target, f"{prefix}.<name>"))
    for target, path in nested:
        if target not in shared:
            rows.extend(_rows(target, path))
    return rows


def table() -> str:
    header = ["| Key | Type | Default | Meaning |", "|---|---|---|---|"]
    rows = _rows(PlatformConfig, "")
    region = [r for r in rows if r.startswith(f"| `{REGION_KEY}`")]
    return "\n".join(header + region + [r for r in rows if r not in region])


SECTION = Section(DOCS / "configuration.md", "config-reference", table)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], SECTION))
