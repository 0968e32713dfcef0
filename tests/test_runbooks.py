"""Tests that every alert rule has its runbook page under docs/runbooks/, in the one structure every page shares, and that the
pages, their index and the rules' runbook_url annotations agree."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.alerting import alert_names, rule_groups
from tests.conftest import stack_config, typed_config
from tools.offline import ROOT

RUNBOOKS = ROOT / "docs" / "runbooks"
INDEX = RUNBOOKS / "README.md"
SECTIONS = ["## What it means", "## What to look at first", "## What usually fixes it"]
HEADING = re.compile(r"#{1,6} ")
REPLICA_KEYS = ("scheduler", "apiServer", "triggerer")  # the DAG processor runs alone (components/config/rules.py)
HTTPS_BASE = "https://github.com/example-org/airflow-platform/blob/main/docs/runbooks"


def with_changes(stack: str, airflow: dict[str, Any] | None = None, alerting: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack file's config with some keys of its airflow and alerting maps changed."""
    config = stack_config(stack)
    if airflow:
        for key, value in airflow.items():
            config["airflow-platform:airflow"].setdefault(key, {}).update(value)
    if alerting:
        config.setdefault("airflow-platform:alerting", {}).update(alerting)
    return config


# The stacks whose alerts must each have a page, and those whose union every page must belong to: with every replica count at
# 2, the *ReplicasMissing alerts are declared whatever the stack files say.
CONFIGS = {
    "prod": typed_config(stack_config("prod")),
    "dev": typed_config(stack_config("dev")),
    "prod-replicas-2": typed_config(with_changes("prod", airflow={"replicas": {key: 2 for key in REPLICA_KEYS}})),
}
DECLARED = sorted({name for stack in ("prod", "dev") for name in alert_names(CONFIGS[stack])})
DECLARABLE = {name for cfg in CONFIGS.values() for name in alert_names(cfg)}
PAGES = sorted(path.stem for path in RUNBOOKS.glob("*.md") if path != INDEX)
RULES = [(stack, rule) for stack in ("prod", "dev") for group in rule_groups(CONFIGS[stack]) for rule in group["rules"]]


def prose_lines(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (brackets in a command are not a link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def sections(text: str) -> list[tuple[str, str]]:
    """Each heading of the page with the text up to the next one (code blocks included)."""
    lines, fenced, result = text.splitlines(), False, []
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and HEADING.match(line):
            result.append((line, ""))
        elif result:
            result[-1] = (result[-1][0], result[-1][1] + line + "\n")
    return result


@pytest.mark.parametrize("name", DECLARED, ids=DECLARED)
def test_page_exists(name):
    """Every alert prod or dev declares has a page named after it."""
    assert (RUNBOOKS / f"{name}.md").is_file()


@pytest.mark.parametrize("name", DECLARED, ids=DECLARED)
def test_page_structure(name):
    """The page is `# <name>`, a lead, then exactly the three sections in order, none empty."""
    text = (RUNBOOKS / f"{name}.md").read_text()
    assert text.splitlines()[0] == f"# {name}"
    parts = sections(text)
    assert [heading for heading, _ in parts] == [f"# {name}", *SECTIONS]
    assert [heading for heading, body in parts if not body.strip()] == []


@pytest.mark.parametrize("page", PAGES, ids=PAGES)
def test_page_belongs_to_an_alert(page):
    """Every page is the runbook of an alert some stack can declare (prod, dev, or prod with every replica count at 2)."""
    assert page in DECLARABLE


def test_structure_check_bites():
    """Control: a swapped or empty section, or a shell comment taken for a heading, fails the checks above."""
    good = "# A\n\nLead.\n\n## What it means\n\nx\n\n## What to look at first\n\n```sh\n# not a heading\n```\n\n## What usually fixes it\n\ny\n"
    assert [h for h, _ in sections(good)] == ["# A", *SECTIONS]
    swapped = good.replace("## What it means", "## What usually fixes it", 1)
    assert [h for h, _ in sections(swapped)] != ["# A", *SECTIONS]
    empty = good.replace("\nx\n", "\n")
    assert [h for h, body in sections(empty) if not body.strip()] == ["## What it means"]


@pytest.mark.parametrize("page", PAGES, ids=PAGES)
def test_index_lists_page(page):
    """The index has exactly one line linking the page."""
    assert len([line for line in INDEX.read_text().splitlines() if f"]({page}.md)" in line]) == 1


@pytest.mark.parametrize("page", ["README", *PAGES], ids=["README", *PAGES])
def test_links_lead_to_files(page):
    """Every relative link of a runbook page names a file of the repository (anchors aside)."""
    path = RUNBOOKS / f"{page}.md"
    links = re.findall(r"\]\(([^)]+)\)", "\n".join(prose_lines(path.read_text())))
    targets = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link)]
    assert [t for t in targets if t and not (path.parent / t).exists()] == []


@pytest.mark.parametrize("stack, rule", RULES, ids=[f"{stack}-{rule['alert']}" for stack, rule in RULES])
def test_runbook_url(stack, rule):
    """Each declared rule's runbook_url is the stack's alerting.runbookBaseUrl joined with its page's name."""
    cfg = CONFIGS[stack]
    assert rule["annotations"]["runbook_url"] == f"{cfg.alerting.runbook_base_url}/{rule['alert']}.md"


def test_runbook_url_follows_the_base():
    """With alerting.runbookBaseUrl set to an https URL, every runbook_url is that URL joined with the alert's page."""
    cfg = typed_config(with_changes("prod", alerting={"runbookBaseUrl": HTTPS_BASE}))
    urls = {rule["alert"]: rule["annotations"]["runbook_url"] for group in rule_groups(cfg) for rule in group["rules"]}
    assert urls == {name: f"{HTTPS_BASE}/{name}.md" for name in alert_names(cfg)}


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_default_runbook_url_names_the_page(stack):
    """With the default base (docs/runbooks), every runbook_url is the repository path of an existing page."""
    cfg = CONFIGS[stack]
    assert cfg.alerting.runbook_base_url == "docs/runbooks"
    urls = [rule["annotations"]["runbook_url"] for group in rule_groups(cfg) for rule in group["rules"]]
    assert [url for url in urls if not (ROOT / url).is_file()] == []
