"""Tests every policy of the pack on its cases: each area's test module (tests/test_policy_*.py) holds a CASES table of
policy -> (compliant resources, violating resources, the violating resources' exact messages); this module runs them all
and checks that every policy has its cases in exactly one table."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from policies.airflow_guard.catalog import BY_NAME
from tests.test_policy_rules import messages

TABLES = {path.name: getattr(importlib.import_module(f"tests.{path.stem}"), "CASES", {})
          for path in sorted(Path(__file__).parent.glob("test_policy_*.py")) if path.name != Path(__file__).name}
CASES = {policy: case for table in TABLES.values() for policy, case in table.items()}


def test_every_policy_has_a_case_in_one_table():
    """No policy of the pack goes untested, and none is described twice."""
    owners = {policy: [name for name, table in TABLES.items() if policy in table] for policy in CASES}
    assert sorted(CASES) == sorted(BY_NAME)
    assert {policy: tables for policy, tables in owners.items() if len(tables) > 1} == {}


@pytest.mark.parametrize("policy", sorted(CASES))
def test_compliant_input_passes(policy):
    """The compliant input raises nothing."""
    compliant, _, _ = CASES[policy]
    assert messages(policy, compliant) == []


@pytest.mark.parametrize("policy", sorted(CASES))
def test_violating_input_is_reported_exactly(policy):
    """The violating input raises exactly these messages, in this order."""
    _, violating, expected = CASES[policy]
    assert messages(policy, violating) == expected
