"""Tests that the scenario's Airflow ran as the platform's pods run: every process and job with a read-only root
filesystem, writing only /tmp and $AIRFLOW_HOME/logs (the emptyDirs of the chart's values), and that nothing failed
for it."""

from __future__ import annotations

import subprocess

from tests.e2e.local_airflow import read_only_root

PROBE = 'for p in "$1/probe" "$1/logs/probe" /tmp/probe /var/tmp/probe; do touch "$p" 2>/dev/null && echo "$p writable" || echo "$p read-only"; done'


def test_a_process_writes_only_tmp_and_the_logs(scenario):
    """Started as the scenario's log writers are, a probe can write /tmp and the logs folder and nothing else."""
    home = scenario.airflow.home
    command = read_only_root(["sh", "-c", PROBE, "sh", str(home)], home, [str(home / "logs")])
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{home}/probe read-only", f"{home}/logs/probe writable", "/tmp/probe writable",
                                          "/var/tmp/probe read-only"]
    assert not (home / "probe").exists() and (home / "logs" / "probe").exists()


def test_no_process_was_refused_a_write(scenario):
    """No Airflow process's log reports a write the read-only root refused."""
    refused = [p.name for p in scenario.airflow.processes if "Read-only file system" in p.log.read_text(errors="replace")]
    assert refused == []
