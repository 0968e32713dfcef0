"""docs/alerts.md's alert table, generated from the rules the program declares so it cannot drift from them.

    python -m tools.alert_reference          # print the table
    python -m tools.alert_reference --write  # replace the table in docs/alerts.md
"""

from __future__ import annotations

import sys

from components import alerting
from tools.doc_sections import DOCS, Section, cell, code, main
from tools.offline import read_stack_file, stack_file, typed_config


def table() -> str:
    """One row per alert: what it says, and the rule prod runs (dev's differ only by the stack's thresholds)."""
    rows = ["| Alert | Severity | For | What it says (prod's thresholds) | Threshold from | prod's rule |", "|---|---|---|---|---|---|"]
    for alerts in alerting.alerts(typed_config(read_stack_file(stack_file("prod")))).values():
        for alert in alerts:
            threshold = f"`{alert.threshold_key}`" if alert.threshold_key else "—"
            rows.append(f"| `{alert.name}` | {alert.severity} | {alert.duration} | {cell(alert.summary)}: {cell(alert.description)} | "
                        f"{threshold} | `{code(alert.expr)}` |")
    return "\n".join(rows)


SECTION = Section(DOCS / "alerts.md", "alert-reference", table)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], SECTION))
