"""How an OTLP metric point becomes a Prometheus series on the platform's path (OTLP -> the collector's Prometheus
exporter -> Prometheus), implemented once for the tests: the alert rules' names are checked with it, and the end-to-end
suite turns what real Airflow sends into the series Prometheus would store.

The rules are the OpenTelemetry specification's "Prometheus and OpenMetrics Compatibility", section "OTLP Metric points
to Prometheus" (specification/compatibility/prometheus_and_openmetrics.md), which the collector's exporter follows with
its defaults (unit and type suffixes on): Metric Metadata (name characters, unit suffix), Sums (`_total`), Gauges,
Metric Attributes (label characters, collisions), Instrumentation Scope (`otel_scope_name`, `otel_scope_version`) and
Resource Attributes (`job` from `service.namespace`/`service.name`, `instance` from `service.instance.id`, empty
without one; every other resource attribute goes to `target_info`, not onto the series).
"""

from __future__ import annotations

import re
from typing import Mapping

# Abbreviations the collector writes out (pkg/translator/prometheus, unitMap/perUnitMap), a subset covering UCUM's usual units.
UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
    "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
    "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz", "%": "percent",
}
PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def _sanitize(name: str, allowed: str) -> str:
    return re.sub(r"_+", "_", re.sub(f"[^{allowed}]", "_", name))


def unit_words(unit: str) -> str:
    """A UCUM unit as the name suffix: "ms" -> "milliseconds", "{packet}" -> "", "By/s" -> "bytes_per_second"."""
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit:
        return ""
    main, _, per = unit.partition("/")
    words = UNITS.get(main, main)
    if per:
        words = f"{words}_per_{PER_UNITS.get(per, per)}" if words else f"per_{PER_UNITS.get(per, per)}"
    return _sanitize(words, "a-zA-Z0-9_").strip("_")


def metric_name(name: str, unit: str = "", monotonic_sum: bool = False, gauge: bool = False) -> str:
    """The Prometheus name of an OTLP metric: invalid characters as `_`, the unit's suffix unless the name holds it
    already ("1" is "ratio" on gauges), then `_total` on a monotonic sum."""
    result = _sanitize(name, "a-zA-Z0-9_:")
    words = "ratio" if unit == "1" and gauge else ("" if unit == "1" else unit_words(unit))
    if words and words not in result.split("_") and not result.endswith(f"_{words}"):
        result = f"{result}_{words}"
    if monotonic_sum and not result.endswith("_total"):
        result = f"{result}_total"
    return result


def label_name(key: str) -> str:
    """An attribute key as a label name: invalid characters as `_`, runs of `_` as one, and a leading digit prefixed."""
    result = _sanitize(key, "a-zA-Z0-9_")
    return f"key_{result}" if result[:1].isdigit() else result


def labels(attributes: Mapping[str, object], resource: Mapping[str, object], scope_name: str = "",
           scope_version: str = "") -> dict[str, str]:
    """The labels of one point: its attributes (colliding names joined with `;` in the order of the original keys), the
    scope's name and version, and `job` and `instance` from the resource."""
    result: dict[str, str] = {}
    for key in sorted(attributes):
        name = label_name(key)
        value = _string(attributes[key])
        result[name] = f"{result[name]};{value}" if name in result else value
    service = _string(resource.get("service.name", ""))
    namespace = _string(resource.get("service.namespace", ""))
    result.update({"otel_scope_name": scope_name, "otel_scope_version": scope_version,
                   "job": f"{namespace}/{service}" if namespace else service,
                   "instance": _string(resource.get("service.instance.id", ""))})
    return {k: v for k, v in result.items() if v != "" or k == "instance"}


def _string(value: object) -> str:
    # The attribute specification's string forms for the non-string types Airflow and the exporter send.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
