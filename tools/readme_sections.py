"""Generated sections of README.md, each between `<!-- NAME:begin -->` and `<!-- NAME:end -->`."""

from __future__ import annotations

from typing import Callable

from tools.offline import ROOT

README = ROOT / "README.md"


def replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[:start] + "\n" + body + "\n" + text[stop:]


def main(argv: list[str], name: str, table: Callable[[], str]) -> int:
    """Print the section's table, or with --write replace it in README.md."""
    if "--write" in argv:
        README.write_text(replace_section(README.read_text(), name, table()))
    else:
        print(table())
    return 0
