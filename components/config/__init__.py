"""The typed stack config: every key, its type, its default, and the rules that tie keys together.

Data flows one way: the stack file -> `load()` -> these objects -> the components. Nothing else reads
`pulumi.Config`. Shape, types and ranges are checked by pydantic (strict: `"3"` is not an integer and
`"yes"` is not a boolean), with the field types of `fields`; rules that relate several keys are checked
afterwards (`rules`). Either way the first problem stops the run with one `ConfigError` sentence (`errors`) that names
the key and what is allowed, before any resource is declared.

Each top-level key's models have a module of their own (`network`, `cluster`, `teams`, `dag_storage`, `database`,
`broker`, `alarms`, `airflow`, `monitoring`, `alerting`, `chart_repositories`, all on the base of `model`), and
`platform` holds the whole config. This module is the one entry point: it parses, and re-exports what others import.

Defaults that differ in production are declared as `None` with a `defaultText`, and resolved in one place,
`PlatformConfig._resolve_environment_defaults` (in `platform`).
"""

from __future__ import annotations

import json
from typing import Any, Collection

import pulumi
from pydantic import ValidationError

from components.config.airflow import AirflowConfig, DagSyncConfig, TaskPodsConfig, WorkersConfig
from components.config.alarms import AlarmsConfig
from components.config.broker import BrokerConfig
from components.config.cluster import ClusterConfig, NodeGroupConfig
from components.config.database import DatabaseConfig
from components.config.errors import sentence, unwrap
from components.config.fields import PROJECT, REGION_KEY, SECRET_KEYS, ConfigError
from components.config.platform import PlatformConfig
from components.config.rules import check_rules, node_group_architecture
from components.config.teams import TeamConfig

__all__ = ["PROJECT", "REGION_KEY", "SECRET_KEYS", "AirflowConfig", "AlarmsConfig", "BrokerConfig", "ClusterConfig", "ConfigError",
           "DagSyncConfig", "DatabaseConfig", "NodeGroupConfig", "PlatformConfig", "TaskPodsConfig", "TeamConfig", "WorkersConfig",
           "decode_stack_config", "load", "node_group_architecture", "parse", "unwrap"]


# --- entry points --------------------------------------------------------------------------------

def parse(raw: dict[str, Any]) -> PlatformConfig:
    """Validate a decoded stack config (keys without the project prefix, plus `aws:region`)."""
    try:
        cfg = PlatformConfig.model_validate(raw)
    except ValidationError as exc:
        raise sentence(exc.errors()[0], PlatformConfig) from None
    check_rules(cfg)
    return cfg


def _decode(key: str, text: str) -> Any:
    """Pulumi hands every value over as a string; objects, lists, numbers and booleans arrive as JSON."""
    field = PlatformConfig.model_fields.get(key) or next(
        (f for f in PlatformConfig.model_fields.values() if f.alias == key), None)
    if field is not None and unwrap(field.annotation) is str:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def decode_stack_config(values: dict[str, str], secret_keys: Collection[str] = ()) -> dict[str, Any]:
    """Turn the engine's config map (`airflow-platform:zones` -> `"3"`) into `parse()`'s input, refusing foreign keys."""
    raw: dict[str, Any] = {}
    for full_key, text in values.items():
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT and key in SECRET_KEYS:
            if full_key not in secret_keys:
                raise ConfigError(key, f"must be a secret: set it with pulumi config set --secret {full_key} <value>")
            raw[key] = text
        elif namespace == PROJECT:
            raw[key] = _decode(key, text)
        elif full_key == REGION_KEY:
            raw[REGION_KEY] = text
        elif namespace == "aws":
            raise ConfigError(full_key, f"is not read by this program: the only aws key it uses is {REGION_KEY} (give credentials through the environment, for example AWS_PROFILE)")
    return raw


def load() -> PlatformConfig:
    """Read and validate the running stack's config."""
    values = pulumi.runtime.get_config_env()
    return parse(decode_stack_config(values, pulumi.runtime.get_config_secret_keys_env()))
