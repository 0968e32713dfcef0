"""The README's policy table, generated from the pack's catalog so it cannot drift from it.

    python -m tools.policy_reference          # print the table
    python -m tools.policy_reference --write  # replace the table in README.md
"""

from __future__ import annotations

import json
import sys

from policies.airflow_guard.catalog import POLICIES
from policies.airflow_guard.engine import CONFIG_DIR, load_config, settings
from tools import readme_sections as sections
from tools.readme_sections import replace_section


def _cell(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def table() -> str:
    dev, prod = settings(load_config(CONFIG_DIR / "dev.json")), settings(load_config(CONFIG_DIR / "prod.json"))
    rows = ["| Policy | Severity | Checkov | dev / prod | What it requires | Properties (default) |", "|---|---|---|---|---|---|"]
    for policy in POLICIES:
        properties = "; ".join(f"`{key}` ({json.dumps(schema['default'])})" for key, schema in policy.config_schema.items())
        kind = " (stack)" if policy.needs_stack else ""
        rows.append(f"| `{policy.name}`{kind} | {policy.severity} | {', '.join(policy.checkov) or '—'} | "
                    f"{dev[policy.name].level} / {prod[policy.name].level} | {_cell(policy.description)} | {properties or '—'} |")
    return "\n".join(rows)


def readme_with_table(text: str) -> str:
    return replace_section(text, "policy-reference", table())


if __name__ == "__main__":
    sys.exit(sections.main(sys.argv[1:], "policy-reference", table))
