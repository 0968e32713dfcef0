"""Where the upstream artefacts the tests and the offline plan read are found, and the one sentence when one is not.

- Helm charts (with the values schemas and CRDs they carry), looked for in this order:
  1. the directory named by $AIRFLOW_PLATFORM_CHARTS: chart trees `<chart>-<version>/` or archives `<chart>-<version>.tgz`;
  2. `../shared/charts` beside the repository (source trees);
  3. the repository's git-ignored cache `.cache/charts`, which `make charts` fills with archives pulled from the stack's
     chart repositories and checked against their pinned digests (checked again here).
  A complete chart wins over an incomplete one (a source tree without the subcharts its Chart.yaml names).
- Airflow's metric list: $AIRFLOW_PLATFORM_SCHEMAS, then `../shared/schemas` (no chart carries it).
- The Kubernetes OpenAPI schemas: the pinned `kubernetes-validate` package (see tools/kube_schema.py).

Nothing else in the repository reads a path outside it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import helm_python as helm

from components.charts import CHARTS, PinnedChart
from tools.offline import ROOT

CHARTS_ENV = "AIRFLOW_PLATFORM_CHARTS"
SCHEMAS_ENV = "AIRFLOW_PLATFORM_SCHEMAS"
SHARED = ROOT.parent / "shared"
CACHE = ROOT / ".cache" / "charts"
FETCH_COMMAND = "make charts"
AIRFLOW_METRICS = "airflow-metrics.txt"


class UpstreamMissing(Exception):
    """An upstream artefact is not where it is looked for; the message is one sentence saying how to provide it."""


@dataclass(frozen=True)
class LocatedChart:
    chart: PinnedChart
    path: Path  # a chart tree or a .tgz archive
    origin: str  # where it was found, as a person would name the place
    # Subcharts Chart.yaml lists that the chart does not carry: (name, version, condition).
    missing_dependencies: tuple[tuple[str, str, Optional[str]], ...] = ()  # (name, version, condition)

    def __str__(self) -> str:
        return f"{self.chart} from {self.origin}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shown(place: Path) -> str:
    """A place as a person finds it: relative to the repository when inside it or beside it (../shared), else absolute."""
    if place.is_relative_to(ROOT):
        return str(place.relative_to(ROOT))
    if place.is_relative_to(ROOT.parent):
        return str(Path("..") / place.relative_to(ROOT.parent))
    return str(place)


def chart_places() -> list[tuple[Path, str, bool]]:
    """(directory, how to name it, whether archives there must match the pinned digest), in search order."""
    places = []
    explicit = os.environ.get(CHARTS_ENV)
    if explicit:
        places.append((Path(explicit), f"${CHARTS_ENV} ({explicit})", False))
    places.append((SHARED / "charts", _shown(SHARED / "charts"), False))
    places.append((CACHE, _shown(CACHE), True))
    return places


def _missing_dependencies(path: Path) -> tuple[tuple[str, str, Optional[str]], ...]:
    """Subcharts Chart.yaml declares that are not in the chart's charts/ (a source tree before `helm dependency build`)."""
    with helm.Chart.load(path) as chart:
        present = {dependency["name"] for dependency in chart.dependencies}
        declared = chart.metadata.get("dependencies") or []
    return tuple((d["name"], d["version"], d.get("condition")) for d in declared if d["name"] not in present)


class DigestMismatch(UpstreamMissing):
    def __init__(self, chart: PinnedChart, archive: Path, actual: str):
        pinned = f"the pinned digest is {chart.digest}" if chart.digest else "components/charts.py pins no digest for it"
        super().__init__(f"{chart}: the archive {_shown(archive)} has sha256 {actual}, but {pinned}; "
                         f"it was refused (delete it and run `{FETCH_COMMAND}` to pull it again from a repository you trust).")


def candidates(chart: PinnedChart) -> list[LocatedChart]:
    """Every place that holds `chart`, in search order."""
    found = []
    for directory, origin, verified in chart_places():
        tree, archive = directory / f"{chart.name}-{chart.version}", directory / chart.archive
        if (tree / "Chart.yaml").is_file():
            found.append(LocatedChart(chart, tree, origin, _missing_dependencies(tree)))
        elif archive.is_file():
            if verified and sha256(archive) != chart.digest:
                raise DigestMismatch(chart, archive, sha256(archive))
            found.append(LocatedChart(chart, archive, origin, _missing_dependencies(archive)))
    return found


@functools.lru_cache(maxsize=None)
def locate_chart(name: str) -> LocatedChart:
    """The first complete copy of the pinned chart `name`, else the first incomplete one; one sentence when there is none."""
    chart = CHARTS[name]
    found = candidates(chart)
    if not found:
        searched = ", ".join(origin for _, origin, _ in chart_places())
        raise UpstreamMissing(f"The Helm chart {chart} was not found in {searched}: run `{FETCH_COMMAND}` to pull it "
                              f"(from the stack's chartRepositories), or point ${CHARTS_ENV} at a directory holding "
                              f"{chart.name}-{chart.version}/ or {chart.archive}.")
    return next((c for c in found if not c.missing_dependencies), found[0])


def all_charts() -> list[LocatedChart]:
    """Every chart the platform installs; stops at the first one missing."""
    return [locate_chart(name) for name in CHARTS]


def airflow_metrics() -> Path:
    """Airflow's metric list (name, type, description per line), which the alert rules' names are checked against."""
    places = ([Path(os.environ[SCHEMAS_ENV])] if os.environ.get(SCHEMAS_ENV) else []) + [SHARED / "schemas"]
    for place in places:
        if (place / AIRFLOW_METRICS).is_file():
            return place / AIRFLOW_METRICS
    raise UpstreamMissing(f"Airflow's metric list {AIRFLOW_METRICS} was not found in {', '.join(map(_shown, places))}: "
                          f"point ${SCHEMAS_ENV} at a directory holding it (an extract of Airflow's metrics.rst tables, "
                          "name<TAB>type<TAB>description).")
