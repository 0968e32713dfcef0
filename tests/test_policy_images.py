"""Tests image-pinned-by-digest on compliant and violating releases and pods, asserting the exact messages, and its
exemptions."""

from __future__ import annotations

from typing import Any

import pytest

from components.helm_values import at_path, merge_maps
from policies.airflow_guard.catalog import BY_NAME
from policies.airflow_guard.engine import evaluate
from policies.airflow_guard.images import CHART_IMAGES, pinned_reference
from policies.airflow_guard.model import UNKNOWN, Resource
from tests.test_policy_rules import RELEASE, res

HEX = "0123456789abcdef" * 4
DIGEST = f"sha256:{HEX}"
DEPLOYMENT, JOB, CRON_JOB = "kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"


def release(name: str, chart: str, values: dict[str, Any]) -> Resource:
    return res(RELEASE, name, {"chart": chart, "version": "1.0.0", "values": values})


def every_image(chart: str, image: dict[str, Any]) -> dict[str, Any]:
    """Values that set each image `chart` renders to `image`."""
    merged: dict[str, Any] = {}
    for dotted in CHART_IMAGES[chart]:
        merged = merge_maps(merged, at_path(dotted, dict(image)))
    return merged


def pod(type_: str, name: str, *images: str, init: str | None = None) -> Resource:
    spec = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)],
            **({"initContainers": [{"name": "setup", "image": init}]} if init else {})}
    template = {"spec": spec}
    body = {"jobTemplate": {"spec": {"template": template}}} if type_ == CRON_JOB else {"template": template}
    return res(type_, name, {"metadata": {"name": name}, "spec": body})


CASES: dict[str, tuple[list[Resource], list[Resource], list[str]]] = {
    "image-pinned-by-digest": (
        # The spellings of a digest the charts take; an image string with a digest; a chart the pack does not know with
        # no image at all; components switched off; pods by digest; a value not known until the update.
        [release("kps", "kube-prometheus-stack", every_image("kube-prometheus-stack", {"registry": "quay.io", "repository": "x", "tag": "v1", "sha": HEX})),
         release("karpenter", "karpenter", every_image("karpenter", {"repository": "public.ecr.aws/karpenter/controller", "tag": "1.14.1", "digest": DIGEST})),
         release("keda", "keda", every_image("keda", {"registry": "ghcr.io", "repository": "kedacore/keda", "tag": f"2.20.2@{DIGEST}"})),
         release("other", "podinfo", {"extraContainers": [{"name": "proxy", "image": f"envoyproxy/envoy:v1.31.0@{DIGEST}"}]}),
         # Redis (on by default) and PgBouncer (off by default) are switched off: their images need no values.
         release("airflow", "airflow", {"redis": {"enabled": False}, **at_path("images", {
             name: {"repository": "apache/airflow", "tag": f"3.1.7@{DIGEST}"} for name in ("airflow", "pod_template")})}),
         pod(DEPLOYMENT, "exporter", f"apache/airflow:3.1.7@{DIGEST}"), pod(CRON_JOB, "cleanup", f"apache/airflow@{DIGEST}"),
         release("lbc", "aws-load-balancer-controller", {"image": {"repository": "public.ecr.aws/eks/aws-load-balancer-controller",
                                                                    "tag": UNKNOWN}})],
        # A tag alone in each form; an empty sha; a digest that is not one; an image the chart renders left to its default;
        # an image string in a sidecar; pods by tag.
        [release("kps", "kube-prometheus-stack", merge_maps(every_image("kube-prometheus-stack", {"registry": "quay.io", "repository": "x", "tag": "v1", "sha": HEX}),
                                                            at_path("grafana.image", {"registry": "docker.io", "repository": "grafana/grafana", "tag": "12.1.0", "sha": ""}))),
         release("airflow", "airflow", merge_maps(every_image("airflow", {"repository": "apache/airflow", "tag": f"3.1.7@{DIGEST}"}), {
             "images": {"pgbouncer": {"repository": "apache/airflow", "tag": "airflow-pgbouncer-2025.03.05-1.23.1"}},
             "workers": {"extraInitContainers": [{"name": "objinsync", "image": "objinsync:2.5.0"}]}})),
         release("otel", "opentelemetry-collector", {"image": {"repository": "otel/opentelemetry-collector-contrib", "tag": "0.158.0",
                                                               "digest": "sha256:abc"}}),
         release("keda", "keda", {"image": {"keda": {"registry": "ghcr.io", "repository": "kedacore/keda", "tag": f"2.20.2@{DIGEST}"}}}),
         release("pooled", "airflow", {"redis": {"enabled": False}, "pgbouncer": {"enabled": True}, **at_path("images", {
             name: {"repository": "apache/airflow", "tag": f"3.1.7@{DIGEST}"} for name in ("airflow", "pod_template")})}),
         pod(DEPLOYMENT, "exporter", "apache/airflow:3.1.7"), pod(JOB, "roles", f"apache/airflow:3.1.7@{DIGEST}", init="busybox:1.36")],
        ["release kps: grafana.image is docker.io/grafana/grafana:12.1.0, by tag alone",
         "release airflow: images.pgbouncer is apache/airflow:airflow-pgbouncer-2025.03.05-1.23.1, by tag alone",
         "release airflow: workers.extraInitContainers[0].image is objinsync:2.5.0, by tag alone",
         "release otel: image is otel/opentelemetry-collector-contrib:0.158.0, by tag alone",
         "release keda: image.metricsApiServer is not set, so the chart's default image is pulled by its tag",
         "release keda: image.webhooks is not set, so the chart's default image is pulled by its tag",
         "release pooled: images.pgbouncer is not set, so the chart's default image is pulled by its tag",
         "release pooled: images.pgbouncerExporter is not set, so the chart's default image is pulled by its tag",
         "Deployment exporter: containers c0 runs apache/airflow:3.1.7, by tag alone",
         "Job roles: initContainers setup runs busybox:1.36, by tag alone"],
    ),
}


@pytest.mark.parametrize("reference, pinned", [
    (f"apache/airflow:3.1.7@{DIGEST}", True), (f"apache/airflow@{DIGEST}", True), (f"127.0.0.1:5000/app:1@{DIGEST}", True),
    ("apache/airflow:3.1.7", False), ("127.0.0.1:5000/app:1", False), ("apache/airflow@sha256:0", False),
    (f"apache/airflow:3.1.7@sha512:{HEX}{HEX}", False),
], ids=["tag-and-digest", "digest", "registry-port", "tag", "registry-port-tag", "short-digest", "other-algorithm"])
def test_what_counts_as_a_digest(reference, pinned):
    """A reference is pinned when it ends in @sha256:<64 hex digits>, with or without its tag."""
    assert pinned_reference(reference) is pinned


def test_an_exempted_reference_passes_and_its_next_tag_does_not():
    """An exemption names one reference: the image at that tag passes, the same image at another tag is judged again."""
    config = {"image-pinned-by-digest": {"exempt": {"apache/airflow:3.1.7": "digest not read yet"}}}
    found = evaluate([pod(DEPLOYMENT, "exporter", "apache/airflow:3.1.7"), pod(DEPLOYMENT, "next", "apache/airflow:3.1.8")], config,
                     policies=[BY_NAME["image-pinned-by-digest"]])
    assert [v.message for v in found] == ["Deployment next: containers c0 runs apache/airflow:3.1.8, by tag alone"]
