"""Run the real program, or one component, under Pulumi's mocks and record every resource it declares.

This is the engine of the offline plan and of the tests. The stack's config reaches the program the way the
Pulumi CLI hands it over (the `PULUMI_CONFIG` environment variable, every value a string), so `config.load()`
runs exactly as in `pulumi preview`. `secure:` values cannot be decrypted offline; they become placeholders
that stay marked secret.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import runpy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pulumi
import yaml
from pulumi.runtime import resource as resource_runtime
from pulumi.runtime import rpc, settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.mocks import MockMonitor

from components.config import PROJECT, REGION_KEY, SECRET_KEYS as SECRET_EXAMPLES, PlatformConfig, decode_stack_config, parse
from tools.mocks import PlatformMocks

ROOT = Path(__file__).resolve().parent.parent
SECRET_PLACEHOLDER = "offline-plan-placeholder"
REDACTED = "[secret]"


@dataclass
class Resource:
    urn: str
    type: str
    name: str
    id: str
    parent: str
    provider: str
    protect: bool
    custom: bool
    dependencies: list[str]  # URNs of explicit depends_on
    property_dependencies: dict[str, list[str]]  # per input property, the URNs it was computed from
    ignore_changes: list[str]
    inputs: dict[str, Any]  # secrets unwrapped, for tests
    outputs: dict[str, Any]  # what the mocks computed beyond the inputs
    secret_inputs: list[str] = field(default_factory=list)
    secret_outputs: list[str] = field(default_factory=list)
    redacted_inputs: dict[str, Any] = field(default_factory=dict)  # secrets replaced, for the plan file

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "id": self.id, "parent": self.parent,
                "provider": self.provider, "protect": self.protect, "secretInputs": self.secret_inputs,
                "inputs": self.redacted_inputs,
                "outputs": {k: REDACTED if k in self.secret_outputs else _redact(v) for k, v in self.outputs.items()}}


@dataclass
class Plan:
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: list[str]
    warnings: list[str]  # what the program logged as warnings or errors (deprecations, for example)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources are named {name}")
        return matches[0]

    def children(self, parent: Resource) -> list[Resource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def descendants(self, parent: Resource) -> list[Resource]:
        found, frontier = [], [parent.urn]
        while frontier:
            urn = frontier.pop()
            for resource in self.resources:
                if resource.parent == urn:
                    found.append(resource)
                    frontier.append(resource.urn)
        return found

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "resources": [r.to_json() for r in self.resources],
                "outputs": {k: REDACTED if k in self.secret_outputs else v for k, v in self.outputs.items()}}


def _redact(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return REDACTED
    if isinstance(value, pulumi.FileAsset):
        return {"fileAsset": str(Path(value.path).resolve().relative_to(ROOT))}
    if isinstance(value, pulumi.StringAsset):
        return {"stringAsset": value.text}
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def _unwrap(value: Any, path: str, secrets: list[str]) -> Any:
    """Drop the secret wrappers so tests can read values, and remember where they were."""
    if rpc.is_rpc_secret(value):
        secrets.append(path)
        return rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


class _RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration request (parent, provider, protect, depends_on...)."""

    def __init__(self, mocks: PlatformMocks):
        super().__init__(mocks)
        self.registrations: list[tuple[Any, str]] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        with self._lock:
            self.registrations.append((request, response.urn))
        return response


class _Collector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _engine_config(config: dict[str, str], secret_keys: list[str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _without_source_positions() -> Iterator[None]:
    """The SDK walks the Python stack at every registration to tell the engine where the resource was declared; under
    mocks nobody reads it, and it costs about 8% of a plan."""
    walk = resource_runtime._get_stack_trace
    resource_runtime._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        resource_runtime._get_stack_trace = walk


def run(program: Callable[[], Any], config: dict[str, str], stack: str = "test",
        secret_keys: list[str] | None = None, mocks: PlatformMocks | None = None) -> Plan:
    """Run `program` under mocks with `config` (engine form: full keys, string values) and return what it declared."""
    mocks = mocks or PlatformMocks(config.get(REGION_KEY, "eu-west-1"))
    monitor = _RecordingMonitor(mocks)
    outputs: dict[str, Any] = {}
    secret_outputs: list[str] = []

    async def collect_outputs() -> None:
        for key, value in settings.get_root_resource().outputs.items():
            output = pulumi.Output.from_input(value)
            outputs[key] = await output.future()
            if await output.is_secret():
                secret_outputs.append(key)

    def body():
        program()
        return collect_outputs()

    logger = logging.getLogger(f"offline-plan-{stack}")
    logger.propagate = False
    logger.handlers[:] = [_Collector()]
    with _engine_config(config, secret_keys or []):
        settings.set_root_resource(None)  # a fresh root stack, so exports of an earlier run do not linger
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor, logger=logger)
        with _without_source_positions():
            pulumi.runtime.test(body)()

    resources = []
    for request, urn in monitor.registrations:
        if request.type == "pulumi:pulumi:Stack":
            continue
        secrets: list[str] = []
        wrapped = rpc.deserialize_properties(request.object)
        inputs = _unwrap(wrapped, "", secrets)
        state = _unwrap(monitor.resources[urn].state, "", [])
        resources.append(Resource(
            urn=urn, type=request.type, name=request.name, id=monitor.resources[urn].id or "", parent=request.parent,
            provider=request.provider, protect=bool(request.protect), custom=bool(request.custom),
            dependencies=list(request.dependencies), ignore_changes=list(request.ignoreChanges), inputs=inputs,
            property_dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items() if deps.urns},
            outputs={k: v for k, v in state.items() if inputs.get(k) != v}, secret_inputs=secrets,
            secret_outputs=list(request.additionalSecretOutputs), redacted_inputs=_redact(wrapped)))
    resources.sort(key=lambda r: r.urn)
    return Plan(stack=stack, resources=resources, outputs=outputs, secret_outputs=sorted(secret_outputs),
                warnings=logger.handlers[0].messages)


def engine_values(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A stack file's `config:` map in the form the CLI passes to the program: strings, JSON for structures."""
    values, secret_keys = {}, []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = SECRET_EXAMPLES.get(key.partition(":")[2], SECRET_PLACEHOLDER) if key.startswith(f"{PROJECT}:") else SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, (dict, list)):
            values[key] = json.dumps(value)
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        else:
            values[key] = str(value)
    return values, secret_keys


def stack_file(stack: str) -> Path:
    return ROOT / f"Pulumi.{stack}.yaml"


class StackFileError(Exception):
    """A stack file that cannot be read as a stack file; the message is one sentence with the place."""


def refusal(path: Path, error: Exception) -> str:
    """The one sentence a refused stack file prints: the file's own problem, or its config's, named after the file."""
    return str(error) if isinstance(error, StackFileError) else f"{path.name}: {error}"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The stack file's `config:` map; a file that is not YAML, or not a map, stops with one sentence naming the place."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "it cannot be parsed"
        raise StackFileError(f"{path.name} is not valid YAML{where}: {problem}.") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name} is not valid YAML: {error}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise StackFileError(f"{path.name} must be a map with a `config:` map of keys to values, as `pulumi config set` writes it.")
    return document.get("config") or {}


def typed_config(config: dict[str, Any]) -> PlatformConfig:
    """The typed config of a stack file's `config:` map, decoded as a real run decodes it (secrets as placeholders)."""
    return parse(decode_stack_config(*engine_values(config)))


def run_stack_config(config: dict[str, Any], stack: str, mocks: PlatformMocks | None = None) -> Plan:
    """Run `__main__.py` for a stack config given as the stack file's `config:` map."""
    values, secret_keys = engine_values(config)
    return run(lambda: runpy.run_path(str(ROOT / "__main__.py")), values, stack=stack, secret_keys=secret_keys, mocks=mocks)

