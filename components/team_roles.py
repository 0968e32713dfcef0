"""Airflow's native role per team (FAB auth manager), created by a Job the program runs after each release.

A DAG grants its team's role access through `access_control` (dagtool check insists); the role itself carries
only what a team member needs around their DAGs, and no access to any DAG: FAB then shows each team its own
DAGs, their runs, tasks and logs, and nothing of the others'. The script is idempotent, so the Job can run again.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Sequence

# Resource -> actions every team role gets (FAB's resource names in Airflow 3.1, checked by running the script
# against a real Airflow DB in the tests). DAG-level access is not here: it comes from each DAG's access_control.
TEAM_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "Website": ("can_read",),
    "My Profile": ("can_read", "can_edit"),
    "My Password": ("can_read", "can_edit"),
    "DAG Runs": ("can_read", "can_create", "can_edit"),
    "Task Instances": ("can_read", "can_edit"),
    "Task Logs": ("can_read",),
    "XComs": ("can_read",),
    "DAG Code": ("can_read",),
    "DAG Versions": ("can_read",),
    "DAG Warnings": ("can_read",),
    "DAG Dependencies": ("can_read",),
    "Assets": ("can_read",),
    "ImportError": ("can_read",),
    "Audit Logs": ("can_read",),
}


def team_roles_script(teams: Sequence[str]) -> str:
    """The shell script: create each team's role, then grant it the permissions above, grouped by action."""
    if not teams:
        return "echo 'no teams: no roles to create'"
    roles = " ".join(shlex.quote(team) for team in teams)
    lines = ["set -euo pipefail", f"airflow roles create {roles}"]
    by_actions: dict[tuple[str, ...], list[str]] = {}
    for resource, actions in TEAM_PERMISSIONS.items():
        by_actions.setdefault(actions, []).append(resource)
    for actions, resources in by_actions.items():
        lines.append(f"airflow roles add-perms {roles} --resource {' '.join(shlex.quote(r) for r in resources)} "
                     f"--action {' '.join(actions)}")
    return "\n".join(lines)


def job_name(teams: Sequence[str]) -> str:
    """A Job's pod template cannot change, so a changed team list gets a new Job (and the old one goes)."""
    return f"airflow-team-roles-{hashlib.sha256(team_roles_script(teams).encode()).hexdigest()[:8]}"
