"""Tests the OTLP -> Prometheus translation on the examples the OpenTelemetry specification's compatibility page states."""

from __future__ import annotations

import pytest

from tools.otlp_prometheus import label_name, labels, metric_name, unit_words


@pytest.mark.parametrize("unit, words", [
    ("ms", "milliseconds"),        # "Converting from abbreviations to full words"
    ("{packet}", ""),              # "Dropping the portions of the Unit within brackets"
    ("By/s", "bytes_per_second"),  # "Converting foo/bar to foo_per_bar"
    ("{request}/s", "per_second"),
    ("", ""),
], ids=["abbreviation", "brackets", "per", "count-per", "none"])
def test_unit_words(unit, words):
    """Units become the words of the name's suffix."""
    assert unit_words(unit) == words


@pytest.mark.parametrize("name, unit, monotonic, gauge, expected", [
    ("airflow.scheduler_heartbeat", "", True, False, "airflow_scheduler_heartbeat_total"),
    ("airflow.dag_processing.import_errors", "", False, True, "airflow_dag_processing_import_errors"),
    ("requests.total", "", True, False, "requests_total"),                    # `_total` only once
    ("http.server.duration", "ms", False, True, "http_server_duration_milliseconds"),
    ("queue.wait_seconds", "s", False, True, "queue_wait_seconds"),           # the name holds the unit already
    ("cpu.utilization", "1", False, True, "cpu_utilization_ratio"),           # "1" is "ratio" on gauges
    ("items.done", "1", True, False, "items_done_total"),
    ("sent.bytes", "By", True, False, "sent_bytes_total"),                    # the unit before the type suffix
    ("received", "By", True, False, "received_bytes_total"),
    ("a..b--c", "", False, True, "a_b_c"),                                    # runs of `_` become one
], ids=["counter", "gauge", "total-once", "unit-suffix", "unit-present", "ratio", "ratio-not-on-sums",
        "bytes-present", "bytes-added", "collapse"])
def test_metric_name(name, unit, monotonic, gauge, expected):
    """Names follow the specification's Metric Metadata and Sums rules."""
    assert metric_name(name, unit, monotonic_sum=monotonic, gauge=gauge) == expected


@pytest.mark.parametrize("key, expected", [("dag_id", "dag_id"), ("http.method", "http_method"), ("a..b", "a_b"),
                                           ("0day", "key_0day")], ids=["kept", "dot", "collapse", "digit"])
def test_label_name(key, expected):
    """Attribute keys become valid label names."""
    assert label_name(key) == expected


def test_colliding_attributes_are_joined_in_key_order():
    """Two keys with the same label name keep both values, joined with ; in the order of the original keys."""
    assert labels({"b.c": "2", "b_c": "1"}, {})["b_c"] == "2;1"


def test_job_and_instance_come_from_the_resource():
    """service.namespace/service.name is the job, service.instance.id the instance; other resource attributes are not labels."""
    assert labels({"dag_id": "a_b"}, {"service.name": "Airflow", "service.namespace": "prod", "service.instance.id": "pod-1:7",
                                      "host.name": "pod-1"}, "airflow.metrics", "1.0") == {
        "dag_id": "a_b", "otel_scope_name": "airflow.metrics", "otel_scope_version": "1.0", "job": "prod/Airflow", "instance": "pod-1:7"}


def test_instance_is_empty_without_an_instance_id():
    """Without service.instance.id every process of a service writes the same series: the instance label is empty."""
    assert labels({}, {"service.name": "Airflow"}) == {"job": "Airflow", "instance": ""}
