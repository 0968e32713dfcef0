"""Shared fixtures: the real stack files, run as the whole program under mocks, once per session."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import pytest

from components.config import PlatformConfig
from tools import render, upstream
from tools.offline import ROOT, Plan, read_stack_file, run_stack_config, stack_file, typed_config

# The options a platform team may choose, each as the stack it starts from and the changes to that stack's maps (None
# removes a key): what the renders, the policies and the whole-program tests cover beside the plain dev and prod stacks.
VARIANTS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "prod-efs": ("prod", {"airflow-platform:airflow": {"dagDelivery": "efs"}}),
    "prod-celery-and-kubernetes": ("prod", {"airflow-platform:airflow": {"executor": "CeleryExecutor,KubernetesExecutor"}}),
    "prod-without-pgbouncer": ("prod", {"airflow-platform:airflow": {"pgbouncer": {"enabled": False}}}),
    "dev-with-pgbouncer": ("dev", {"airflow-platform:airflow": {"pgbouncer": {"enabled": True}}}),
    "prod-existing-vpc": ("prod", {"airflow-platform:network": {
        "vpcCidr": None, "existingVpcId": "vpc-0123456789abcdef0",
        "existingPrivateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]}}),
}
# Fixtures that read upstream charts: a session that uses one checks first that every chart can be found.
UPSTREAM_FIXTURES = {"rendering", "located_chart", "values_errors"}
LOCATED = pytest.StashKey[list]()


def stack_config(stack: str) -> dict[str, Any]:
    """A private copy of a stack file's `config:` map, safe to mutate."""
    return copy.deepcopy(read_stack_file(stack_file(stack)))


def variant_config(variant: str) -> tuple[str, dict[str, Any]]:
    """The stack name and `config:` map of one of VARIANTS."""
    stack, changes = VARIANTS[variant]
    config = stack_config(stack)
    for key, change in changes.items():
        merged = {**config.get(key, {}), **change}
        config[key] = {k: v for k, v in merged.items() if v is not None}
    return stack, config


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


def pytest_collection_modifyitems(session, config, items):
    """When the selected tests read upstream charts and one cannot be found, stop before running any with the one sentence
    that says how to provide it (never a traceback, never a skip)."""
    if any(UPSTREAM_FIXTURES & set(getattr(item, "fixturenames", ())) for item in items):
        try:
            config.stash[LOCATED] = upstream.all_charts()
            upstream.airflow_metrics()
        except upstream.UpstreamMissing as missing:
            pytest.exit(str(missing), returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Name every chart the renders used that lacks subcharts, so a partial render is never silent."""
    for located in config.stash.get(LOCATED, []):
        if located.missing_dependencies:
            missing = ", ".join(f"{name} {version}" for name, version, _ in located.missing_dependencies)
            terminalreporter.write_line(f"rendered without subcharts: {located} lacks {missing} (the enabled ones were left out "
                                        f"of its renders; `{upstream.FETCH_COMMAND}` pulls the published chart, which carries them)")


@dataclass
class Rendering:
    """What reaches the cluster for one variant: the plan, its releases rendered by their charts, and the program's own
    Kubernetes objects, all validated."""

    cfg: PlatformConfig
    plan: Plan
    releases: dict[str, render.RenderedRelease]
    program_errors: list[str]

    def declared(self, kind: str) -> list[dict]:
        """The Kubernetes objects of `kind` the program declares itself."""
        return [o for o in render.program_objects(self.plan) if o["kind"] == kind]


@pytest.fixture(scope="session")
def rendering() -> Callable[[str], Rendering]:
    """rendering("prod-efs"): the variant planned, rendered and validated once per session."""
    cache: dict[str, Rendering] = {}

    def get(variant: str) -> Rendering:
        if variant not in cache:
            stack, config = variant_config(variant)
            plan = run_stack_config(config, stack)
            rendered = render.render_plan(plan)
            cache[variant] = Rendering(typed_config(config), plan, {r.name: r for r in rendered}, render.validate(plan, rendered))
        return cache[variant]

    return get


@pytest.fixture(scope="session")
def located_chart() -> Callable[[str], upstream.LocatedChart]:
    return upstream.locate_chart


@pytest.fixture(scope="session")
def values_errors(located_chart) -> Callable[[str, dict], list[str]]:
    """values_errors("airflow", values): what Helm's own check of values, merged over the chart's values.yaml, against the
    chart's values.schema.json refuses (the renders apply it to every variant); one line per problem."""
    def errors(chart_name: str, values: dict) -> list[str]:
        with helm.Chart.load(located_chart(chart_name).path) as chart:
            try:
                chart.validate_schema(values)
            except helm.HelmValuesError as refused:
                return str(refused).splitlines()[1:]
        return []

    return errors
