"""Checkov over what reaches the cluster: every object each release renders and every Kubernetes object the program
declares, for one stack's offline plan. `python -m tools.checkov_scan prod` prints the failed checks per release.

Checkov runs from its own environment (.venv-checkov, requirements-checkov.txt: its pins clash with the program's).
Each object is scanned in the namespace it is applied to: Helm sends a chart's namespaced objects without one and the
client puts them in the release's, which a scan of the bare render would take for the default namespace.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools import render
from tools.offline import Plan, read_stack_file, run_stack_config, stack_file

ROOT = Path(__file__).resolve().parent.parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
PROGRAM = "program"  # the source of the objects the program declares itself
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "IngressClass", "NodePool",
                  "EC2NodeClass", "PersistentVolume", "CSIDriver", "RuntimeClass"}


@dataclass(frozen=True, order=True)
class Finding:
    source: str  # the release, or PROGRAM
    object: str  # <Kind>/<namespace>/<name> (cluster-scoped objects: <Kind>/<name>)
    check: str  # Checkov's id, e.g. CKV_K8S_43
    name: str = ""  # Checkov's title of the check


def object_key(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    if obj["kind"] in CLUSTER_SCOPED:
        return f"{obj['kind']}/{metadata.get('name')}"
    return f"{obj['kind']}/{metadata.get('namespace')}/{metadata.get('name')}"


def objects_by_source(plan: Plan, rendered: list[render.RenderedRelease]) -> dict[str, list[dict]]:
    """Every object as it is applied: a release's namespaced objects in the release's namespace unless they name one."""
    sources: dict[str, list[dict]] = {}
    for release in rendered:
        placed = []
        for obj in release.objects:
            obj = copy.deepcopy(obj)
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {}).setdefault("namespace", release.namespace)
            placed.append(obj)
        sources[release.name] = placed
    sources[PROGRAM] = render.program_objects(plan)
    return sources


def scan(sources: dict[str, list[dict]]) -> list[Finding]:
    """Every failed check of every object, from one Checkov run over a file per object."""
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: `make test` builds it from requirements-checkov.txt")
    with tempfile.TemporaryDirectory(prefix="checkov-") as directory:
        where: dict[str, tuple[str, str]] = {}
        for source, objects in sources.items():
            for index, obj in enumerate(objects):
                relative = f"{source}/{index:04d}.yaml"
                path = Path(directory) / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(yaml.safe_dump(obj, sort_keys=False))
                where[f"/{relative}"] = (source, object_key(obj))
        result = subprocess.run([str(CHECKOV), "-d", directory, "--framework", "kubernetes", "-o", "json", "--quiet", "--compact",
                                 "--skip-download"], capture_output=True, text=True, timeout=600)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov exited {result.returncode}: {result.stderr[-2000:]}")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    findings = []
    for report in reports:
        for failed in report.get("results", {}).get("failed_checks", []):
            source, key = where[failed["file_path"]]
            findings.append(Finding(source, key, failed["check_id"], failed.get("check_name", "")))
    return sorted(set(findings))


def scan_stack(stack: str) -> list[Finding]:
    plan = run_stack_config(read_stack_file(stack_file(stack)), stack)
    rendered = render.render_plan(plan)
    return scan(objects_by_source(plan, rendered))


def grouped(findings: list[Finding], reasons: dict[tuple[str, str], str]) -> list[dict]:
    """The findings in the baseline's form: one group per check and reason (an object keeps the reason `reasons` gives
    it for that check, else none yet), with its objects."""
    groups: dict[tuple[str, str], dict] = {}
    for finding in findings:
        entry = f"{finding.source} {finding.object}"
        reason = reasons.get((entry, finding.check), "")
        group = groups.setdefault((finding.check, reason), {"check": finding.check, "title": finding.name, "reason": reason, "objects": []})
        group["objects"].append(entry)
    return [groups[key] for key in sorted(groups)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="prod")
    parser.add_argument("--baseline", type=Path, help="rewrite this baseline file with the findings, keeping its reasons per check")
    args = parser.parse_args(argv)
    findings = scan_stack(args.stack)
    if args.baseline:
        header = "".join(line for line in args.baseline.read_text().splitlines(keepends=True) if line.startswith("#"))
        reasons = {(entry, group["check"]): group["reason"] for group in yaml.safe_load(args.baseline.read_text()) or []
                   for entry in group["objects"]}
        body = yaml.safe_dump(grouped(findings, reasons), sort_keys=False, width=140)
        args.baseline.write_text(header + body)
    for source, count in sorted(Counter(f.source for f in findings).items()):
        print(f"{source}: {count} failed checks")
    print(f"total: {len(findings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
