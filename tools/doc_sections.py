"""Generated sections of the pages under docs/, each between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.

Each generator (tools/config_reference.py, policy_reference.py, alert_reference.py, image_reference.py) builds its table from the code it
documents; `--write` puts it in its page, and tests/test_docs.py keeps every page equal to what would be generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tools.offline import ROOT

DOCS = ROOT / "docs"


@dataclass(frozen=True)
class Section:
    page: Path
    name: str
    table: Callable[[], str]

    def current(self) -> str:
        """The page with this section as the code generates it now."""
        return replace_section(self.page.read_text(), self.name, self.table())


def code(text: str) -> str:
    """Text inside a code span of a table cell: only the column separator needs escaping there."""
    return text.replace("|", "\\|")


def cell(text: str | None) -> str:
    """Text of a table cell: the separator escaped, and <name> shown rather than taken for an HTML tag."""
    return code(text or "").replace("<", "&lt;").replace(">", "&gt;")


def replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + body + "\n" + text[stop:]


def main(argv: list[str], section: Section) -> int:
    """Print the section's table, or with --write replace it in its page."""
    if "--write" in argv:
        section.page.write_text(section.current())
    else:
        print(section.table())
    return 0
