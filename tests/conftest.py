"""Shared fixtures: the real stack files, run as the whole program under mocks, once per session."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

from components.config import PlatformConfig, decode_stack_config, parse
from tools.offline import ROOT, Plan, engine_values, read_stack_file, run_stack_config, stack_file

# The upstream schemas the rendered artefacts must pass, in the shared folder beside the repository.
SCHEMAS = ROOT.parent / "shared" / "schemas"


def stack_config(stack: str) -> dict[str, Any]:
    """A private copy of a stack file's `config:` map, safe to mutate."""
    return copy.deepcopy(read_stack_file(stack_file(stack)))


def typed_config(config: dict[str, Any]) -> PlatformConfig:
    """The typed config for a stack file's `config:` map, through the same decoding as a real run (secrets included)."""
    return parse(decode_stack_config(*engine_values(config)))


@pytest.fixture(scope="session")
def dev_plan() -> Plan:
    return run_stack_config(stack_config("dev"), "dev")


@pytest.fixture(scope="session")
def prod_plan() -> Plan:
    return run_stack_config(stack_config("prod"), "prod")


@pytest.fixture
def plan_with() -> Callable[..., Plan]:
    """Plan a stack file with some keys changed: plan_with("prod", {"airflow-platform:zones": 4})."""

    def run(stack: str, changes: dict[str, Any]) -> Plan:
        config = stack_config(stack)
        config.update(changes)
        return run_stack_config(config, stack)

    return run


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    """Credentials for moto, so no test can reach a real account by accident."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


# dagtool's own environment (the Makefile builds it): Airflow 3.1.7, as a team's CI installs it.
DAGTOOL_VENV = ROOT / ".venv-dagtool"


@pytest.fixture(scope="session")
def dagtool_bin() -> Path:
    """The environment's bin directory; the tests fail, not skip, without it."""
    bin_dir = DAGTOOL_VENV / "bin"
    if not (bin_dir / "dagtool").exists():
        pytest.fail(f"{bin_dir / 'dagtool'} is missing: `make test` builds it (pip install -r dagtool/requirements-check.txt ./dagtool)")
    return bin_dir
