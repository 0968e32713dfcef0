"""Benchmark of the offline plan: the prod stack as it is, and the prod stack with 50 teams.

    python -m tools.bench_plan [--runs N]

Two figures per case, medians of N runs on this machine:
- command: `python -m tools.plan --quiet --file ... --policy-config policies/config/prod.json` from process start to exit
  (what a person waits for, the policy pack's checks included);
- program: the program run under mocks inside a warm process (what the stack's size costs).
Targets (issue 2): prod command <= 1.5 s; 50 teams <= 1.5 x the time of the 3 teams of prod.
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

    print(f"offline plan, median of {runs} runs, {sys.platform}, python {sys.version.split()[0]}")
    print(f"{'case':<22}{'resources':>10}{'command s':>12}{'program s':>12}")
    for label, (count, command, program) in results.items():
        print(f"{label:<22}{count:>10}{command:>12.3f}{program:>12.3f}")
    (_, base_command, base_program), (_, many_command, many_program) = results.values()
    command_ratio, program_ratio = many_command / base_command, many_program / base_program
    print(f"50 teams / 3 teams: command {command_ratio:.2f}x, program {program_ratio:.2f}x")
    met = base_command <= 1.5 and command_ratio <= 1.5
    print(f"targets (prod command <= 1.5 s, 50 teams <= 1.5x): {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
