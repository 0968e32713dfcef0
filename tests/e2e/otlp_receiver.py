"""An OTLP/HTTP metrics receiver standing where the collector stands: it decodes what Airflow exports and records each
point as the Prometheus series the collector's exporter would make of it (tools/otlp_prometheus)."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tools.otlp_prometheus import labels, metric_name

CUMULATIVE = 2  # AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    at: float  # when the receiver got it (time.time())

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


def _value(any_value: AnyValue) -> object:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else ""


def _attributes(pairs) -> dict[str, object]:
    return {pair.key: _value(pair.value) for pair in pairs}


def translate(request: ExportMetricsServiceRequest, at: float) -> list[Sample]:
    """Every gauge and sum point of one export, as Prometheus series (Airflow sends no histograms)."""
    samples = []
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind == "gauge":
                    name, points = metric_name(metric.name, metric.unit, gauge=True), metric.gauge.data_points
                elif kind == "sum":
                    monotonic = metric.sum.is_monotonic and metric.sum.aggregation_temporality == CUMULATIVE
                    name, points = metric_name(metric.name, metric.unit, monotonic_sum=monotonic, gauge=not monotonic), metric.sum.data_points
                else:
                    continue
                for point in points:
                    value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
                    series = labels(_attributes(point.attributes), resource, scope.name, scope.version)
                    samples.append(Sample(name, tuple(sorted(series.items())), value, at))
    return samples


@dataclass
class Receiver:
    port: int
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                received = translate(request, time.time())
                with receiver._lock:
                    receiver.samples.extend(received)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def series(self, name: str, since: float = 0.0, **match: str) -> list[Sample]:
        """The samples of one metric received after `since` whose labels include `match`."""
        with self._lock:
            return [s for s in self.samples if s.name == name and s.at >= since and all(s.label(k) == v for k, v in match.items())]

    def names(self) -> set[str]:
        with self._lock:
            return {s.name for s in self.samples}
