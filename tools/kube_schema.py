"""Validate Kubernetes objects as the API server would take them: built-in kinds against the Kubernetes OpenAPI schemas of
the cluster's version (from the pinned `kubernetes-validate` package, its strict variant: an unknown field is an error),
custom resources against the openAPIV3Schema of the CRDs the platform's charts ship, made strict the same way, and the
CRDs' CEL rules (`x-kubernetes-validations`, evaluated by cel-python) as they apply when an object is created.

Not checked here: what admission webhooks or controllers refuse.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any, Iterable

import celpy
import importlib_resources
import jsonschema
import referencing
from referencing import Registry, Resource

SCHEMA_PACKAGE = "kubernetes_validate"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = {"$ref": f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}


def _schema_dir(kubernetes_version: str):
    directory = importlib_resources.files(SCHEMA_PACKAGE).joinpath("kubernetes-json-schema", f"v{kubernetes_version}.0-local-strict")
    if not directory.is_dir():
        raise ValueError(f"the pinned {SCHEMA_PACKAGE} has no schemas for Kubernetes {kubernetes_version}")
    return directory


@functools.lru_cache(maxsize=None)
def _registry(kubernetes_version: str) -> Registry:
    definitions = json.loads(_schema_dir(kubernetes_version).joinpath("_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


def _strict(schema: Any, root: bool = False) -> Any:
    """A CRD's structural schema as JSON Schema the way the API server applies it with strict field validation."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (_strict(v) if k in ("items", "not", "additionalProperties") else
               [_strict(s) for s in v] if k in ("anyOf", "allOf", "oneOf") else
               {name: _strict(s) for name, s in v.items()} if k == "properties" else v)
           for k, v in schema.items()}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if root:
        out.setdefault("properties", {})
        out["properties"]["metadata"] = OBJECT_META
        out["properties"].setdefault("apiVersion", {"type": "string"})
        out["properties"].setdefault("kind", {"type": "string"})
        out["additionalProperties"] = False
    return out


_CEL = celpy.Environment()


def _find(text: celpy.celtypes.StringType, pattern: celpy.celtypes.StringType) -> celpy.celtypes.StringType:
    """Kubernetes' regex library: the first match of the pattern, or "" (k8s.io/apiserver/pkg/cel/library/regex.go)."""
    match = re.search(pattern, text)
    return celpy.celtypes.StringType(match.group(0) if match else "")


def _split(text: celpy.celtypes.StringType, separator: celpy.celtypes.StringType) -> celpy.celtypes.ListType:
    """cel-go's strings extension, which the API server enables: the parts between the separators."""
    return celpy.celtypes.ListType([celpy.celtypes.StringType(part) for part in text.split(separator)])


# The API server's CEL has libraries cel-python lacks; these are the ones the charts' CRD rules call (Karpenter's).
KUBERNETES_FUNCTIONS = {"find": _find, "split": _split}


@functools.lru_cache(maxsize=None)
def _rule(expression: str):
    try:
        return _CEL.program(_CEL.compile(expression), functions=KUBERNETES_FUNCTIONS)
    except Exception as error:  # cel-python raises its own error types for each stage
        raise ValueError(f"a CRD rule uses CEL this check cannot evaluate ({expression!r}): {error}") from None


def _cel_errors(schema: dict, value: Any, path: str = "") -> list[str]:
    """Every CEL rule of the schema tree that `value` breaks, as the API server reports them (the rule's message). Transition
    rules, which read oldSelf, apply only to an update and are not rules an install can break."""
    if value is None or not isinstance(schema, dict):
        return []
    errors = []
    for validation in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in validation["rule"]:
            continue
        result = _rule(validation["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            errors.append(f"{path or '(object)'}: {validation.get('message') or 'failed rule: ' + validation['rule']}")
    if isinstance(value, dict):
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        for key, item in value.items():
            child = properties.get(key, extra if isinstance(extra, dict) else None)
            errors += _cel_errors(child, item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors += _cel_errors(schema.get("items"), item, f"{path}.{index}" if path else str(index))
    return errors


def crd_schemas(crds: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the strict JSON Schema of every served version of these CRDs."""
    schemas = {}
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served", True) and "schema" in version:
                schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return schemas


def describe(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{obj.get('kind')} {where}{metadata.get('name')}"


class Schemas:
    """The schemas of one cluster: its Kubernetes version's built-in kinds and the given CRDs."""

    def __init__(self, kubernetes_version: str, crds: Iterable[dict] = ()):
        self.kubernetes_version = kubernetes_version
        self._directory = _schema_dir(kubernetes_version)
        self._registry = _registry(kubernetes_version)
        self._custom = crd_schemas(crds)
        self._validators: dict[tuple[str, str], Any] = {}

    def _validator(self, api_version: str, kind: str):
        key = (api_version, kind)
        if key not in self._validators:
            group, _, version = api_version.rpartition("/")
            file = self._directory.joinpath(f"{kind.lower()}-{group.split('.')[0] + '-' if group else ''}{version}.json")
            if file.is_file():
                schema = json.loads(file.read_text())
            elif key in self._custom:
                schema = _strict(copy.deepcopy(self._custom[key]), root=True)
            else:
                schema = None
            self._validators[key] = schema and jsonschema.Draft202012Validator(schema, registry=self._registry)
        return self._validators[key]

    def errors(self, obj: dict) -> list[str]:
        """What the API server would refuse in `obj`, one line per problem; empty when it validates."""
        if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
            return [f"{describe(obj)}: no apiVersion and kind"]
        validator = self._validator(obj["apiVersion"], obj["kind"])
        if validator is None:
            return [f"{describe(obj)}: no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {self.kubernetes_version} "
                    "or the CRDs the platform installs"]
        try:
            errors = [f"{describe(obj)}: {'.'.join(map(str, e.absolute_path)) or '(object)'}: {e.message}"
                      for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))]
        except referencing.exceptions.Unresolvable as error:  # a broken schema, not a broken object
            raise ValueError(f"the schema of {obj['apiVersion']} {obj['kind']} does not resolve: {error}") from None
        custom = self._custom.get((obj["apiVersion"], obj["kind"]))
        # The API server evaluates CEL rules only on an object its structural schema accepts.
        if custom is not None and not errors:
            errors = [f"{describe(obj)}: {error}" for error in _cel_errors(custom, obj)]
        return errors
