"""Tests that the pages under docs/ document the code exactly as it is, and that the README's links lead somewhere."""

from __future__ import annotations

import re

import pytest

from tests.conftest import stack_config
from tools import alert_reference, config_reference, image_reference, policy_reference
from tools.offline import ROOT

SECTIONS = {"configuration": config_reference.SECTION, "policies": policy_reference.SECTION, "alerts": alert_reference.SECTION,
            "images": image_reference.SECTION}


@pytest.mark.parametrize("section", SECTIONS.values(), ids=SECTIONS.keys())
def test_generated_table_is_current(section):
    """Each generated table equals the one its code yields now (regenerate with `python -m tools.<name>_reference --write`)."""
    assert section.current() == section.page.read_text()


def test_every_stack_file_key_is_documented():
    """Each top-level key the stack files use has a row in the configuration reference."""
    text = config_reference.SECTION.page.read_text()
    for stack in ("dev", "prod"):
        for key in stack_config(stack):
            assert f"| `{key}` |" in text


@pytest.mark.parametrize("page", ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))])
def test_links_lead_to_files(page):
    """Every relative link of a page names a file of the repository (anchors aside)."""
    path = ROOT / page
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", path.read_text()) if not re.match(r"[a-z]+:", t)]
    assert [t for t in targets if t and not (path.parent / t).exists()] == []
