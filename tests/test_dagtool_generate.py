"""Tests `dagtool generate`: one DAG file per dbt model group, which then passes `dagtool check`."""

from __future__ import annotations

import ast
import json
import subprocess

import pytest

from airflow_platform_dagtool.cli import main
from airflow_platform_dagtool.generate import model_groups
from tests.conftest import ROOT

MANIFEST = ROOT / "tests" / "fixtures" / "dbt" / "manifest.json"


def literal(source: str, name: str):
    """The value a generated file assigns to a module-level name."""
    [value] = [node.value for node in ast.parse(source).body if isinstance(node, ast.Assign) and node.targets[0].id == name]
    return ast.literal_eval(value)


@pytest.fixture
def generated(tmp_path, capsys):
    out = tmp_path / "dags"
    assert main(["generate", str(MANIFEST), "--team", "analytics", "--out", str(out), "--owner", "analytics@example.com"]) == 0
    capsys.readouterr()
    return out


class TestGroups:
    """Tests how models are grouped."""

    def test_groups_from_dbt_groups_or_folders(self):
        """Models of a dbt group go together; an ungrouped model goes by its folder; tests and seeds are not models."""
        groups = model_groups(json.loads(MANIFEST.read_text()))
        assert {group: sorted(n["name"] for n in nodes.values()) for group, nodes in groups.items()} == {
            "customers": ["dim_customers", "stg_customers"], "sales": ["fct_orders", "stg_orders"], "reporting": ["daily_kpis"]}


class TestFiles:
    """Tests the generated files."""

    def test_one_file_per_group(self, generated):
        """Each group gets its own file, named after the DAG it holds."""
        assert sorted(p.name for p in generated.iterdir()) == ["analytics_dbt_customers.py", "analytics_dbt_reporting.py", "analytics_dbt_sales.py"]

    def test_models_and_dependencies_inside_a_group(self, generated):
        """A task per model; upstreams only within the group (fct_orders also reads dim_customers, of another group)."""
        source = (generated / "analytics_dbt_sales.py").read_text()
        assert literal(source, "MODELS") == ["fct_orders", "stg_orders"]
        assert literal(source, "DEPENDENCIES") == {"fct_orders": ["stg_orders"]}
        assert "dag_id='analytics_dbt_sales'" in source and "tags=['analytics', 'dbt', 'sales']" in source
        assert "access_control={'analytics': {" in source and "default_args={\"owner\": 'analytics@example.com'" in source
        compile(source, "analytics_dbt_sales.py", "exec")

    @pytest.mark.parametrize("option, value", [("--project-dir", "/opt/dbt/$(rm -rf /)"), ("--dbt-command", "dbt\"; echo")],
                             ids=["project-dir", "dbt-command"])
    def test_shell_text_is_refused(self, tmp_path, option, value):
        """Options that end up in a bash command accept only plain path characters."""
        with pytest.raises(SystemExit) as caught:
            main(["generate", str(MANIFEST), "--team", "analytics", "--out", str(tmp_path), "--owner", "a@example.com", option, value])
        assert caught.value.code == 2

    def test_generated_dags_pass_check(self, generated, dagtool_bin):
        """The producer pattern holds: what generate writes, check accepts (Airflow really loads the three DAGs)."""
        result = subprocess.run([str(dagtool_bin / "dagtool"), "check", str(generated), "--team", "analytics"],
                                capture_output=True, text=True, timeout=300)
        assert (result.returncode, result.stdout.strip()) == (0, "3 files, 3 DAGs, 0 violations"), result.stderr
