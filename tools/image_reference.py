"""docs/images.md's image table, generated from components/images.py so it cannot drift from it.

    python -m tools.image_reference          # print the table
    python -m tools.image_reference --write  # replace the table in docs/images.md
"""

from __future__ import annotations

import sys

from components.images import CATALOG
from tools.doc_sections import DOCS, Section, cell, code, main


def table() -> str:
    rows = ["| Image | Chart: values | Repository:tag | Digest | Where the digest is read |", "|---|---|---|---|---|"]
    for image in CATALOG:
        digest = f"`{image.digest}`" if image.digest else "**none yet**: pulled by tag"
        rows.append(f"| `{image.name}` | {image.chart}: `{image.values_path}` | `{code(image.repository)}:{code(image.tag)}` | {digest} | "
                    f"{cell(image.digest_source)} |")
    return "\n".join(rows)


SECTION = Section(DOCS / "images.md", "image-reference", table)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], SECTION))
