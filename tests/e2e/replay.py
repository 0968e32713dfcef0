"""The series the receiver recorded, as promtool input: what the stack's Prometheus would have stored.

Airflow exported every EXPORT_INTERVAL_MS here; each export becomes one scrape of the collector (every 30 s in the
stack), so the replayed clock runs 30 times faster while every value is Airflow's own. A process that stopped leaves its
last value in the collector until `metric_expiration` (5 minutes, ten scrapes), then its series is gone: the replay does
the same.
"""

from __future__ import annotations

from collections import defaultdict

from tests.e2e.local_airflow import EXPORT_INTERVAL_MS
from tests.e2e.otlp_receiver import Sample

SCRAPE_SECONDS = 30
EXPIRY_SCRAPES = 10  # the collector's metric_expiration (5m) in scrapes
INTERVAL = EXPORT_INTERVAL_MS / 1000


def scrape_index(start: float, at: float) -> int:
    """The replayed scrape that a moment of the real run falls in."""
    return max(0, int((at - start) / INTERVAL))


def _series_text(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    quoted = ", ".join(f'{k}="{v}"' for k, v in labels if v != "")
    return f"{name}{{{quoted}}}"


def input_series(samples: list[Sample], start: float, end: float, names: set[str]) -> list[dict[str, str]]:
    """promtool's input_series for the samples of `names` received in [start, end]."""
    by_series: dict[tuple[str, tuple], list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.name in names and start <= sample.at <= end:
            by_series[(sample.name, sample.labels)].append(sample)
    result = []
    for (name, labels), points in sorted(by_series.items()):
        values: dict[int, float] = {}
        for point in sorted(points, key=lambda p: p.at):
            values[scrape_index(start, point.at)] = point.value
        first, last = min(values), max(values)
        row, current = [], None
        for index in range(last + EXPIRY_SCRAPES + 1):
            if index in values:
                current = values[index]
            row.append("_" if current is None or index < first else _number(current))
        result.append({"series": _series_text(name, labels), "values": " ".join(row)})
    return result


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
