"""Tests `dagtool check`: a fixture repository with good DAGs and one of each violation, loaded by Airflow 3.1.7's own
DagBag in dagtool's environment (.venv-dagtool), reported with file and line, in text and JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from airflow_platform_dagtool import check as check_module
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "team_dags"
BUDGET = "1.5"  # slow_parse.py sleeps 2.5 s at import
EXPECTED = [
    ("bad_prefix.py", 6, "dag-id-prefix", "dag_id 'orders_backfill' must start with 'analytics_'"),
    ("broken_import.py", 4, "import-error", "does not import under Airflow: ModuleNotFoundError: No module named 'warehouse_client_not_installed'"),
    ("default_owner.py", 6, "owner", "DAG 'analytics_no_owner' needs a real owner (default_args owner), not 'airflow'"),
    ("loop_generated.py", 6, "dags-per-file", "builds 3 DAGs in a loop; generate one file per DAG (at most 1 per file)"),
    ("missing_tag.py", 6, "team-tag", "DAG 'analytics_untagged' must be tagged 'analytics' (tags: ['finance'])"),
    ("no_access.py", 6, "team-access",
     "DAG 'analytics_hidden' must grant the Airflow role 'analytics' access (access_control={'analytics': {'DAGs': {'can_read', 'can_edit'}}})"),
    ("syntax_error.py", 3, "import-error", "does not import under Airflow: SyntaxError: expected ':'"),
]


def run_check(dagtool_bin: Path, directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(dagtool_bin / "dagtool"), "check", str(directory), *args], capture_output=True, text=True, timeout=300)


# A leftover that would be an import error if it were checked (git keeps no __pycache__, so the test makes it).
STALE = Path("__pycache__") / "leftover.py"


@pytest.fixture(scope="module")
def fixture_run(dagtool_bin, tmp_path_factory):
    repository = tmp_path_factory.mktemp("check") / "team_dags"
    shutil.copytree(FIXTURE, repository, ignore=shutil.ignore_patterns("__pycache__"))
    (repository / STALE).parent.mkdir()
    (repository / STALE).write_text("this is not python\n")
    report = repository.parent / "report.json"
    result = run_check(dagtool_bin, repository, "--team", "analytics", "--budget-seconds", BUDGET, "--json", str(report))
    return result, json.loads(report.read_text())


class TestFixtureRepository:
    """Tests the report on a repository with good DAGs and one of each violation."""

    def test_exit_status_is_non_zero(self, fixture_run):
        """Any violation fails the CI step."""
        result, _ = fixture_run
        assert result.returncode == 1, result.stderr

    def test_every_violation_with_file_and_line(self, fixture_run):
        """The human report names each violation at its file and line, and nothing else (the good DAGs pass)."""
        result, _ = fixture_run
        lines = result.stdout.splitlines()
        expected = [f"{file}:{line}: {rule}: {message}" for file, line, rule, message in EXPECTED]
        [slow] = [line for line in lines if line.startswith("slow_parse.py:1: parse-time: took ")]
        assert slow.endswith("s to parse, over the budget of 1.5 s")
        assert [line for line in lines if line != slow][:-1] == expected
        assert lines[-1] == "12 files, 10 DAGs, 8 violations"

    def test_json_report(self, fixture_run):
        """The JSON report carries the same violations, the DAGs found, and ok=false."""
        _, report = fixture_run
        assert (report["team"], report["ok"]) == ("analytics", False)
        found = [(v["file"], v["line"], v["rule"]) for v in report["violations"]]
        assert found == sorted([(f, line, rule) for f, line, rule, _ in EXPECTED] + [("slow_parse.py", 1, "parse-time")])
        dags = {d["dag_id"]: (d["file"], d["line"]) for d in report["dags"]}
        assert dags["analytics_orders"] == ("analytics_orders.py", 10)
        assert dags["analytics_weekly_report"] == ("reports/analytics_weekly.py", 8)
        assert sorted(d for d in dags if d.startswith("analytics_copy_")) == ["analytics_copy_customers", "analytics_copy_orders",
                                                                                "analytics_copy_payments"]

    def test_skips_pycache(self, fixture_run):
        """Files under __pycache__ are neither checked nor counted."""
        _, report = fixture_run
        assert not any("__pycache__" in f for f in report["files"])
        assert not any("__pycache__" in v["file"] for v in report["violations"])


class TestCleanRepository:
    """Tests a repository that follows every guardrail."""

    def test_good_dags_pass(self, dagtool_bin, tmp_path):
        """The fixture's good DAGs alone (with their helper module and the notifier import) pass, exit 0."""
        repo = tmp_path / "repo"
        for relative in ("analytics_orders.py", "reports/analytics_weekly.py", "common/__init__.py", "common/defaults.py"):
            (repo / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(FIXTURE / relative, repo / relative)
        result = run_check(dagtool_bin, repo, "--team", "analytics")
        assert (result.returncode, result.stdout.strip()) == (0, "4 files, 2 DAGs, 0 violations")

    def test_another_team_sees_every_dag_as_foreign(self, dagtool_bin, tmp_path):
        """Checked as team finance, the analytics DAGs break the prefix, tag and access rules (and its helper import)."""
        repo = tmp_path / "repo"
        repo.mkdir()
        shutil.copy(FIXTURE / "reports" / "analytics_weekly.py", repo)
        result = run_check(dagtool_bin, repo, "--team", "finance")
        rules = [line.split(": ")[1] for line in result.stdout.splitlines()[:-1]]
        assert (result.returncode, rules) == (1, ["dag-id-prefix", "team-access", "team-tag"])


class TestSourceReading:
    """Tests how check finds the line of a DAG and of a loop (DagBag keeps no line numbers)."""

    def test_lines_of_dags_and_loops(self):
        """DAG(...) calls and @dag functions by dag_id; the first loop that declares DAGs."""
        loop = check_module._read_source(FIXTURE / "loop_generated.py")
        assert (loop.loop_line, loop.first_dag_line, loop.lines) == (6, 7, {})
        decorated = check_module._read_source(FIXTURE / "reports" / "analytics_weekly.py")
        assert (decorated.loop_line, decorated.lines) == (None, {"analytics_weekly_report": 8})

    def test_error_line_is_the_deepest_frame_in_the_file(self):
        """An import error points at the file's own line, not Airflow's."""
        trace = ('Traceback (most recent call last):\n  File "/x/airflow/models/dagbag.py", line 405, in parse\n'
                 '  File "/dags/t/a.py", line 9, in <module>\n    helper()\n  File "/dags/t/a.py", line 3, in helper\nValueError: no')
        assert check_module._error_line(trace, Path("/dags/t/a.py")) == 3
