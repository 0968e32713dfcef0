"""Tests that the README documents every config key and every policy exactly as the code defines them."""

from tools.config_reference import readme_with_table
from tools.policy_reference import readme_with_table as readme_with_policy_table
from tools.readme_sections import README


def test_configuration_reference_is_current():
    """The README's table equals the one generated from components/config.py (regenerate with --write)."""
    text = README.read_text()
    assert readme_with_table(text) == text


def test_every_stack_file_key_is_documented():
    """Each top-level key the stack files use has a row in the table."""
    from tests.conftest import stack_config

    text = README.read_text()
    for stack in ("dev", "prod"):
        for key in stack_config(stack):
            assert f"| `{key}` |" in text


def test_policy_reference_is_current():
    """The README's policy table equals the one generated from the pack's catalog and config files (regenerate with --write)."""
    text = README.read_text()
    assert readme_with_policy_table(text) == text
