"""dagtool check: every DAG file of a team's repository against the platform's guardrails.

Each file is loaded with Airflow's own DagBag, as the DAG processor would, from where the platform puts it
(`<DAG folder>/<team>/...`), so an import error here is the one the scheduler would show. Then, per DAG: its dag_id starts with the team's prefix, it has a real owner and the team's
tag, and it grants the team's Airflow role access (the role sees only the DAGs that name it). Per file: it parses
within the time budget and builds at most one DAG (one generated file per DAG, not hundreds in a loop: a file
that loops costs the scheduler CPU, memory and loop time on every parse).
"""

from __future__ import annotations

import ast
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from airflow_platform_dagtool.conventions import DEFAULT_OWNER, dag_id_prefix

DEFAULT_BUDGET_SECONDS = 5.0
DEFAULT_MAX_DAGS_PER_FILE = 1
_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    rule: str
    message: str
    dag_id: Optional[str] = None

    def human(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


@dataclass
class Report:
    team: str
    directory: str
    files: list[str] = field(default_factory=list)
    dags: list[dict[str, Any]] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {"team": self.team, "directory": self.directory, "ok": self.ok, "files": self.files, "dags": self.dags,
                "violations": [asdict(v) for v in sorted(self.violations, key=lambda v: (v.file, v.line, v.rule))]}


def dag_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts and not any(part.startswith(".") for part in p.parts))


def _is_dag_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "DAG") or (isinstance(func, ast.Attribute) and func.attr == "DAG")


def _is_dag_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return (isinstance(target, ast.Name) and target.id == "dag") or (isinstance(target, ast.Attribute) and target.attr == "dag")


def _literal_dag_id(call: ast.Call) -> Optional[str]:
    for keyword in call.keywords:
        if keyword.arg == "dag_id" and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
            return keyword.value.value
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


@dataclass
class _Source:
    """Where a file declares its DAGs, read from its syntax tree (DagBag does not keep line numbers)."""

    lines: dict[str, int] = field(default_factory=dict)  # literal dag_id -> line of its DAG(...) or @dag
    first_dag_line: int = 1
    loop_line: Optional[int] = None  # the first loop that declares DAGs


def _read_source(path: Path) -> _Source:
    source = _Source()
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except SyntaxError:
        return source
    declarations: list[int] = []

    def visit(node: ast.AST, loop: Optional[int]) -> None:
        here = loop
        if isinstance(node, _LOOPS) and here is None:
            here = node.lineno
        if _is_dag_call(node):
            declarations.append(node.lineno)
            dag_id = _literal_dag_id(node)
            if dag_id:
                source.lines.setdefault(dag_id, node.lineno)
            if here is not None and source.loop_line is None:
                source.loop_line = here
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                if _is_dag_decorator(decorator):
                    # The decorator's line: where the DAG's arguments are.
                    declarations.append(decorator.lineno)
                    call = decorator if isinstance(decorator, ast.Call) else None
                    source.lines.setdefault((call and _literal_dag_id(call)) or node.name, decorator.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, here)

    visit(tree, None)
    if declarations:
        source.first_dag_line = min(declarations)
    return source


def _error_line(trace: str, path: Path) -> int:
    """The line of `path` an import error points at: the deepest frame in that file, or a SyntaxError's line."""
    frames = re.findall(rf'File "{re.escape(str(path))}", line (\d+)', trace)
    if frames:
        return int(frames[-1])
    match = re.search(r"line (\d+)", trace)
    return int(match.group(1)) if match else 1


def _error_summary(trace: str) -> str:
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "import failed"


def _platform_layout(directory: Path, team: str) -> Path:
    """The repository where the platform puts it: <DAG folder>/<team>/, with the DAG folder on sys.path. A DAG then
    imports exactly what it could import on the platform (its own helpers as `<team>.<module>`, the shared modules)."""
    dags = Path(tempfile.mkdtemp(prefix="dagtool-")) / "dags"
    dags.mkdir()
    (dags / team).symlink_to(directory, target_is_directory=True)
    sys.path.insert(0, str(dags))
    return dags / team


def _prepare_airflow(dags_folder: Path, budget: float) -> None:
    """Airflow reads its configuration once, at import: set it first (quiet, no examples)."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="dagtool-airflow-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    # Import errors are reported as violations; Airflow's own log of them would only repeat them.
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "CRITICAL"
    # DagBag stops a file that hangs; give it room beyond the budget, which is checked separately.
    os.environ["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] = str(max(30.0, budget * 3))


def _owners(owner: str) -> list[str]:
    return [part.strip() for part in (owner or "").split(",") if part.strip()]


def _grants_team(access_control: Any, team: str) -> bool:
    if not access_control or team not in access_control:
        return False
    permissions = access_control[team]
    if isinstance(permissions, dict):  # Airflow 3: {"DAGs": {...}, "DAG Runs": {...}}
        return any(bool(actions) for actions in permissions.values())
    return bool(permissions)  # the older flat form: {"can_read", "can_edit"}


def check(directory: Path, team: str, budget_seconds: float = DEFAULT_BUDGET_SECONDS,
          max_dags_per_file: int = DEFAULT_MAX_DAGS_PER_FILE) -> Report:
    directory = directory.resolve()
    placed = _platform_layout(directory, team)
    _prepare_airflow(placed.parent, budget_seconds)
    # Airflow's own deprecation notices are not the team's to fix, and would bury the report.
    warnings.simplefilter("ignore")
    from airflow.models.dagbag import DagBag  # after the environment above; and importing Airflow is not the file's cost

    report = Report(team=team, directory=str(directory))
    prefix = dag_id_prefix(team)
    for original in dag_files(directory):
        relative = str(original.relative_to(directory))
        path = placed / relative
        report.files.append(relative)
        source = _read_source(path)
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path), include_examples=False, safe_mode=False)
        elapsed = time.perf_counter() - started

        def add(line: int, rule: str, message: str, dag_id: Optional[str] = None) -> None:
            report.violations.append(Violation(relative, line, rule, message, dag_id))

        for _, trace in bag.import_errors.items():
            add(_error_line(trace, path), "import-error", f"does not import under Airflow: {_error_summary(trace)}")
        if elapsed > budget_seconds:
            add(1, "parse-time", f"took {elapsed:.2f} s to parse, over the budget of {budget_seconds:g} s")
        dags = sorted((d for d in bag.dags.values() if Path(d.fileloc) == path), key=lambda d: d.dag_id)
        if len(dags) > max_dags_per_file:
            where = source.loop_line or source.first_dag_line
            how = "in a loop" if source.loop_line else "in one file"
            add(where, "dags-per-file", f"builds {len(dags)} DAGs {how}; generate one file per DAG (at most {max_dags_per_file} per file)")
        for dag in dags:
            line = source.lines.get(dag.dag_id, source.first_dag_line)
            report.dags.append({"dag_id": dag.dag_id, "file": relative, "line": line})
            if not dag.dag_id.startswith(prefix):
                add(line, "dag-id-prefix", f"dag_id {dag.dag_id!r} must start with {prefix!r}", dag.dag_id)
            owners = _owners(dag.owner)
            if not owners or DEFAULT_OWNER in owners:
                add(line, "owner", f"DAG {dag.dag_id!r} needs a real owner (default_args owner), not {dag.owner!r}", dag.dag_id)
            if team not in (dag.tags or set()):
                add(line, "team-tag", f"DAG {dag.dag_id!r} must be tagged {team!r} (tags: {sorted(dag.tags or [])})", dag.dag_id)
            if not _grants_team(dag.access_control, team):
                add(line, "team-access", f"DAG {dag.dag_id!r} must grant the Airflow role {team!r} access "
                                         f"(access_control={{{team!r}: {{'DAGs': {{'can_read', 'can_edit'}}}}}})", dag.dag_id)
    return report
