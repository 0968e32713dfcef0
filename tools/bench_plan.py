"""Benchmark of the offline plan: the prod stack as it is, and the prod stack with 50 teams.

    python -m tools.bench_plan [--runs N]

Figures per case, medians of N runs on this machine:
- command: `python -m tools.plan --quiet --file ... --policy-config policies/config/prod.json` from process start to exit
  (what a person waits for: the program, the policy pack, the four renders and their validation, the files written);
- program: the program run under mocks inside a warm process (what the stack's size costs);
- renders: the four releases rendered by their charts from cold caches (charts loaded and their CRDs parsed again) inside
  a warm process, and then every object validated.
Targets: 50 teams <= 1.5 x the command time of the 3 teams of prod (issue 2); the four renders <= 2 s (issue 9).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tools import render, upstream
from tools.offline import ROOT, read_stack_file, run_stack_config, stack_file

TEAMS_KEY = "airflow-platform:teams"
PROD_POLICIES = ROOT / "policies" / "config" / "prod.json"


def with_teams(config: dict, count: int) -> dict:
    teams = [{"name": f"team-{i:02d}", "owner": f"team-{i:02d}@example.com", "repository": f"example-org/team-{i:02d}-dags"}
             for i in range(count)]
    return {**config, TEAMS_KEY: teams}


def command_seconds(path: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tools.plan", "--quiet", "--file", str(path), "--policy-config", str(PROD_POLICIES)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def program_seconds(config: dict, stack: str, runs: int) -> float:
    run_stack_config(config, stack)  # warm imports and caches once
    samples = []
    for _ in range(runs):
        gc.collect()  # each sample starts from the same heap, not the garbage of the one before
        start = time.perf_counter()
        run_stack_config(config, stack)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def render_seconds(config: dict, stack: str, runs: int) -> tuple[int, float, float]:
    """The plan's release count, and the medians of rendering them from cold caches and of validating what they render."""
    plan = run_stack_config(config, stack)
    renders, validations = [], []
    for _ in range(runs):
        for cache in (render._crds, render._load, upstream.locate_chart):
            cache.cache_clear()
        gc.collect()
        start = time.perf_counter()
        rendered = render.render_plan(plan)
        middle = time.perf_counter()
        render.validate(plan, rendered)
        renders.append(middle - start)
        validations.append(time.perf_counter() - middle)
    return len(render.releases(plan)), statistics.median(renders), statistics.median(validations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs

    prod = read_stack_file(stack_file("prod"))
    cases = {"prod (3 teams)": prod, "prod with 50 teams": with_teams(prod, 50)}
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        for label, config in cases.items():
            path = Path(directory) / f"Pulumi.bench{len(config[TEAMS_KEY])}.yaml"
            path.write_text(yaml.safe_dump({"config": config}))
            plan = run_stack_config(config, path.stem.removeprefix("Pulumi."))
            results[label] = (len(plan.resources), command_seconds(path, runs), program_seconds(config, "bench", runs))

    releases, renders, validation = render_seconds(prod, "bench", runs)
    print(f"offline plan, median of {runs} runs, {sys.platform}, python {sys.version.split()[0]}")
    print(f"{'case':<22}{'resources':>10}{'command s':>12}{'program s':>12}")
    for label, (count, command, program) in results.items():
        print(f"{label:<22}{count:>10}{command:>12.3f}{program:>12.3f}")
    (_, base_command, base_program), (_, many_command, many_program) = results.values()
    command_ratio, program_ratio = many_command / base_command, many_program / base_program
    print(f"50 teams / 3 teams: command {command_ratio:.2f}x, program {program_ratio:.2f}x")
    print(f"prod's {releases} releases: rendered {renders:.3f} s, every object validated {validation:.3f} s")
    met = command_ratio <= 1.5 and renders <= 2.0
    print(f"targets (50 teams <= 1.5x the command, the renders <= 2 s): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
