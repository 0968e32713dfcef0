"""Tests what Checkov (3.3.30, .venv-checkov) finds in the prod stack's rendered manifests and program objects: nothing
beyond tests/checkov_baseline.yaml, where every accepted finding has its object, check and one-line reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tools.checkov_scan import PROGRAM, Finding, objects_by_source, scan

BASELINE = Path(__file__).parent / "checkov_baseline.yaml"
# An object made worse on purpose, scanned in the same run: proof that the scan sees what it is given.
MUTATED = "mutated"


def baseline() -> list[dict]:
    return yaml.safe_load(BASELINE.read_text())


def accepted() -> set[tuple[str, str, str]]:
    """(source, object, check) of every accepted finding."""
    return {(*entry.split(" ", 1), group["check"]) for group in baseline() for entry in group["objects"]}


def privileged_scheduler(scheduler: dict) -> dict:
    worse = copy.deepcopy(scheduler)
    worse["metadata"]["name"] = "airflow-scheduler-privileged"
    for container in worse["spec"]["template"]["spec"]["containers"]:
        container.setdefault("securityContext", {})["privileged"] = True
    return worse


@pytest.fixture(scope="module")
def findings(rendering) -> list[Finding]:
    result = rendering("prod")
    sources = objects_by_source(result.plan, list(result.releases.values()))
    sources[MUTATED] = [privileged_scheduler(result.releases["airflow"].named("Deployment", "airflow-scheduler"))]
    return scan(sources)


def test_the_scan_sees_a_privileged_container(findings):
    """A copy of the scheduler with privileged containers is flagged for it (CKV_K8S_16), so the scan is real."""
    checks = {f.check for f in findings if f.source == MUTATED}
    assert "CKV_K8S_16" in checks


def test_no_finding_beyond_the_baseline(findings):
    """Every finding over the prod stack is one the baseline accepts, with its reason."""
    new = [f"{f.source} {f.object} {f.check} ({f.name})" for f in findings
           if f.source != MUTATED and (f.source, f.object, f.check) not in accepted()]
    assert new == []


def test_every_accepted_finding_still_occurs(findings):
    """The baseline lists nothing the scan no longer finds: a fixed finding leaves it."""
    found = {(f.source, f.object, f.check) for f in findings}
    assert sorted(accepted() - found) == []


def test_every_accepted_finding_has_a_one_line_reason():
    """Each group of the baseline names its check and gives one line of why, and no object is listed twice for a check."""
    for group in baseline():
        assert set(group) == {"check", "title", "reason", "objects"}, group
        assert group["reason"].strip() and "\n" not in group["reason"].strip() and len(group["reason"]) <= 240, group["check"]
    entries = [(entry, group["check"]) for group in baseline() for entry in group["objects"]]
    assert len(entries) == len(set(entries))
    assert {entry.split(" ", 1)[0] for entry, _ in entries} <= {"airflow", "aws-load-balancer-controller", "karpenter", "karpenter-crd",
                                                               "keda", "kube-prometheus-stack", "otel-collector", PROGRAM}
