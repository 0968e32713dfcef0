"""docs/policies.md's policy table, generated from the pack's catalog and config files so it cannot drift from them.

    python -m tools.policy_reference          # print the table
    python -m tools.policy_reference --write  # replace the table in docs/policies.md
"""

from __future__ import annotations

import json
import sys

from policies.airflow_guard.catalog import POLICIES
from policies.airflow_guard.engine import CONFIG_DIR, load_config, settings
from tools.doc_sections import DOCS, Section, cell, main


def table() -> str:
    dev, prod = settings(load_config(CONFIG_DIR / "dev.json")), settings(load_config(CONFIG_DIR / "prod.json"))
    rows = ["| Policy | Severity | Checkov | dev / prod | What it requires | Properties (default) |", "|---|---|---|---|---|---|"]
    for policy in POLICIES:
        properties = "; ".join(f"`{key}` ({json.dumps(schema['default'])})" for key, schema in policy.config_schema.items())
        kind = " (stack)" if policy.needs_stack else ""
        rows.append(f"| `{policy.name}`{kind} | {policy.severity} | {', '.join(policy.checkov) or '—'} | "
                    f"{dev[policy.name].level} / {prod[policy.name].level} | {cell(policy.description)} | {properties or '—'} |")
    return "\n".join(rows)


SECTION = Section(DOCS / "policies.md", "policy-reference", table)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], SECTION))
