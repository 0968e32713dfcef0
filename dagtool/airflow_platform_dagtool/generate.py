"""dagtool generate: one DAG file per dbt model group, from the dbt project's manifest.json.

The producer writes the files and publishes them like any other DAG: the platform's rule is one generated file
per DAG, never one file that builds hundreds of DAGs in a loop. A model's group is its dbt group, or else the
folder it sits in under models/.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from string import Template

from airflow_platform_dagtool.conventions import dag_id_prefix

TEMPLATE = Template(files("airflow_platform_dagtool").joinpath("templates/dbt_group_dag.py.tmpl").read_text())
UNGROUPED = "ungrouped"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or UNGROUPED


def model_groups(manifest: dict) -> dict[str, dict[str, dict]]:
    """group -> {unique_id: node} for every model of the manifest."""
    groups: dict[str, dict[str, dict]] = {}
    for unique_id, node in sorted(manifest.get("nodes", {}).items()):
        if node.get("resource_type") != "model":
            continue
        fqn = node.get("fqn", [])
        group = node.get("group") or (fqn[1] if len(fqn) > 2 else UNGROUPED)
        groups.setdefault(_slug(group), {})[unique_id] = node
    return groups


def render(team: str, group: str, nodes: dict[str, dict], owner: str, schedule: str, dbt_command: str, project_dir: str) -> str:
    """The DAG file's source for one group: a task per model, upstreams limited to models of the same group."""
    models = sorted(node["name"] for node in nodes.values())
    dependencies = {
        node["name"]: sorted(nodes[upstream]["name"] for upstream in node.get("depends_on", {}).get("nodes", []) if upstream in nodes)
        for node in nodes.values()
    }
    return TEMPLATE.substitute(
        group=group, models=repr(models), dependencies=repr({k: v for k, v in sorted(dependencies.items()) if v}),
        dag_id=repr(f"{dag_id_prefix(team)}dbt_{group}"), description=repr(f"dbt models of group {group}"), schedule=repr(schedule),
        tags=repr([team, "dbt", group]), owner=repr(owner), team=repr(team), dbt_command=dbt_command, project_dir=project_dir)


def generate(manifest_path: Path, team: str, out: Path, owner: str, schedule: str = "@daily", dbt_command: str = "dbt",
             project_dir: str = "/opt/airflow/dbt") -> list[Path]:
    manifest = json.loads(manifest_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for group, nodes in model_groups(manifest).items():
        path = out / f"{dag_id_prefix(team)}dbt_{group}.py"
        path.write_text(render(team, group, nodes, owner, schedule, dbt_command, project_dir))
        written.append(path)
    return written
