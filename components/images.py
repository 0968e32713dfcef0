"""Every container image the platform runs, pinned: repository, tag (for people) and digest (for the kubelet).

One table serves three readers: the releases (each chart's image values, `image_values`), the program's own pods
(`PinnedImage.reference`), and the tests, which render every chart and check that each image a pod would pull is one of
these, by digest. A stack may override an entry (`images.<name>`): a mirror keeps the digest, a new tag needs its own.

A digest is the sha256 of the tag's multi-architecture index (what `docker buildx imagetools inspect <image>` prints as
Digest), so one value serves amd64 and arm64 nodes. Where no digest could be read (the registries are out of reach
from where this table was written), `digest` is None: the image is pulled by tag, and the pack's image-pinned-by-digest
refuses it in production unless the stack's policy config exempts that exact reference, as policies/config/prod.json
does for the ones below, each with its reason. `python -m tools.image_digests` reads the missing ones from their registries.

Where each chart renders the reference from its values differs, so each entry names its chart's form (`style`):
- "tag": {repository, tag}, the digest appended to the tag, as the chart prints `repository:tag`;
- "registry-tag": {registry, repository, tag}, the same with the registry apart (KEDA);
- "sha": {registry, repository, tag, sha}, the digest's hex alone (kube-prometheus-stack, Grafana);
- "sha-digest": {registry, repository, tag, sha}, the whole digest in `sha` (kube-state-metrics);
- "registry-digest": {registry, repository, tag, digest} (node-exporter, whose chart refuses `sha`);
- "digest": {repository, tag, digest} (Karpenter).
Every form renders `<repository>:<tag>@sha256:<hex>`: the tag stays in the pod spec, the kubelet pulls by digest.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Optional

from components.helm_values import at_path, merge_maps

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
Style = Literal["tag", "registry-tag", "sha", "sha-digest", "registry-digest", "digest"]


@dataclass(frozen=True)
class PinnedImage:
    name: str          # its key under the stack's `images`
    chart: str         # the chart whose values take it
    values_path: str   # where in that chart's values, dotted
    style: Style
    repository: str    # with its registry, as a pod spec names it (Docker Hub's without one)
    tag: str
    digest: Optional[str]
    # Where the digest was read (or is to be), so the next upgrade can be checked the same way.
    digest_source: str

    @property
    def reference(self) -> str:
        """What a pod spec names: repository:tag@digest, or repository:tag while the digest is unknown."""
        return f"{self.repository}:{self.tag}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"

    def values(self) -> dict[str, Any]:
        """The image in its chart's form (`style`)."""
        pinned_tag = f"{self.tag}@{self.digest}" if self.digest else self.tag
        if self.style == "tag":
            return {"repository": self.repository, "tag": pinned_tag}
        registry, _, path = self.repository.partition("/")
        if self.style == "registry-tag":
            return {"registry": registry, "repository": path, "tag": pinned_tag}
        if self.style == "sha":
            return {"registry": registry, "repository": path, "tag": self.tag, "sha": self.digest.removeprefix("sha256:") if self.digest else ""}
        if self.style == "sha-digest":
            return {"registry": registry, "repository": path, "tag": self.tag, "sha": self.digest or ""}
        if self.style == "registry-digest":
            # The tag names the variant; with `distroless` the chart would append -distroless to it once more.
            return {"registry": registry, "repository": path, "tag": self.tag, "digest": self.digest or "", "distroless": False}
        return {"repository": self.repository, "tag": self.tag, "digest": self.digest or ""}

    def overridden(self, repository: Optional[str], tag: Optional[str], digest: Optional[str]) -> "PinnedImage":
        """This image from a mirror (`repository`: the same manifests, so the same digest) or at another tag (whose digest
        is unknown until given)."""
        new_tag = tag or self.tag
        kept = self.digest if new_tag == self.tag else None
        source = "the stack's images key" if digest else (self.digest_source if kept else "none yet: give images.<name>.digest")
        return dataclasses.replace(self, repository=repository or self.repository, tag=new_tag, digest=digest or kept,
                                   digest_source=source)


def _image(name: str, chart: str, values_path: str, style: Style, repository: str, tag: str, digest: Optional[str],
           source: str) -> PinnedImage:
    if digest is not None and not DIGEST.fullmatch(digest):
        raise ValueError(f"{name}: {digest!r} is not a sha256 digest")
    return PinnedImage(name, chart, values_path, style, repository, tag, digest, source)


_HUB = "the tag's index digest on Docker Hub (docker buildx imagetools inspect {})"
_NOT_READ = "not read yet (the registry is out of reach here): "
# Read from public repositories that pin the same tag by digest (docs/images.md names them); not from the registry.
_PUBLIC_RECORD = "public records of the tag's index digest (docs/images.md), not yet checked against the registry"

CATALOG: tuple[PinnedImage, ...] = (
    # The Airflow chart: Airflow itself (every Airflow pod, the KubernetesExecutor's pod template, the program's Jobs)
    # and the chart's PgBouncer images, which Apache publishes in the airflow repository.
    _image("airflow", "airflow", "images.airflow", "tag", "apache/airflow", "3.1.7", None,
           _NOT_READ + _HUB.format("apache/airflow:3.1.7")),
    _image("pgbouncer", "airflow", "images.pgbouncer", "tag", "apache/airflow", "airflow-pgbouncer-2025.03.05-1.23.1", None,
           _NOT_READ + _HUB.format("apache/airflow:airflow-pgbouncer-2025.03.05-1.23.1")),
    _image("pgbouncerExporter", "airflow", "images.pgbouncerExporter", "tag", "apache/airflow",
           "airflow-pgbouncer-exporter-2025.03.05-0.18.0", None,
           _NOT_READ + _HUB.format("apache/airflow:airflow-pgbouncer-exporter-2025.03.05-0.18.0")),
    # The in-cluster broker outside production (production's is ElastiCache). The chart's tag is rebuilt with each Redis
    # 7.2 patch and base image, so public records of its digest disagree (sha256:74566c69…, sha256:e51cbc16…): the
    # current one is to be read.
    _image("redis", "airflow", "images.redis", "tag", "redis", "7.2-bookworm", None, _NOT_READ + _HUB.format("redis:7.2-bookworm")),
    # KEDA's three, at the chart's appVersion.
    _image("kedaOperator", "keda", "image.keda", "registry-tag", "ghcr.io/kedacore/keda", "2.20.2",
           "sha256:fe74c7b8849586a67ad2201bcb89e7f5ac221ff90399ecaa8fd28427f1ef11e6", _PUBLIC_RECORD),
    _image("kedaMetricsApiServer", "keda", "image.metricsApiServer", "registry-tag", "ghcr.io/kedacore/keda-metrics-apiserver", "2.20.2",
           "sha256:27286536a8a775aeeee37a7e343f8ecebb27ebf680ee1181a4f99e82eefb253b", _PUBLIC_RECORD),
    _image("kedaWebhooks", "keda", "image.webhooks", "registry-tag", "ghcr.io/kedacore/keda-admission-webhooks", "2.20.2",
           "sha256:41f74102aba7959c6e8d08b433ab8a5fd6cae7c5646c78f7fe3de40a52df3439", _PUBLIC_RECORD),
    # The contrib distribution carries the prometheus exporter the platform's pipeline ends in.
    _image("collector", "opentelemetry-collector", "image", "tag", "otel/opentelemetry-collector-contrib", "0.158.0",
           "sha256:c5918f78992ee73b0d6f0e599423ac5ec52dd5d9726733114d6eca53d5a32ed5", _PUBLIC_RECORD),
    _image("loadBalancerController", "aws-load-balancer-controller", "image", "tag", "public.ecr.aws/eks/aws-load-balancer-controller",
           "v3.5.0", "sha256:298acdff5a571731276aaea3d5cc450a264e4ad710a5bddf3e518f68a3f9f6cb", _PUBLIC_RECORD),
    # The chart's own pin (values.yaml controller.image.digest), repeated so that a stack's override has one place.
    _image("karpenter", "karpenter", "controller.image", "digest", "public.ecr.aws/karpenter/controller", "1.14.1",
           "sha256:723130949e4cab989461ff07d1be4cd781d63515432494641b33c235f300ae23", "the karpenter 1.14.1 chart's values.yaml"),
    # kube-prometheus-stack and its subcharts. The operator passes the reloader and Thanos images to what it creates.
    _image("prometheusOperator", "kube-prometheus-stack", "prometheusOperator.image", "sha", "quay.io/prometheus-operator/prometheus-operator",
           "v0.93.1", "sha256:e52bb28fd41c98dd407c7a8cba8bdcfe7eabd7447e250afaf1fe7bb816dedbff", _PUBLIC_RECORD),
    _image("configReloader", "kube-prometheus-stack", "prometheusOperator.prometheusConfigReloader.image", "sha",
           "quay.io/prometheus-operator/prometheus-config-reloader", "v0.93.1",
           "sha256:428f088fe6fe07ab138bda92113664b04848a1dc408e4d3680a60ecdb55d1a65", _PUBLIC_RECORD),
    # The operator's default for a Thanos sidecar, which the platform does not run; pinned all the same.
    _image("thanos", "kube-prometheus-stack", "prometheusOperator.thanosImage", "sha", "quay.io/thanos/thanos", "v0.42.4",
           "sha256:b567818fe608067eb0f1d7c2c4fe361e7ad83c8a256234c97685f1d0bf670cc8", _PUBLIC_RECORD),
    _image("admissionWebhookCertgen", "kube-prometheus-stack", "prometheusOperator.admissionWebhooks.patch.image", "sha",
           "ghcr.io/jkroepke/kube-webhook-certgen", "1.8.7", None, _NOT_READ + "the tag's index digest on ghcr.io"),
    _image("prometheus", "kube-prometheus-stack", "prometheus.prometheusSpec.image", "sha", "quay.io/prometheus/prometheus",
           "v3.14.0-distroless", "sha256:50c707e96da5ade383cb1707790576480485e93de06aa60ad8802cb5f744bd0a", _PUBLIC_RECORD),
    _image("alertmanager", "kube-prometheus-stack", "alertmanager.alertmanagerSpec.image", "sha", "quay.io/prometheus/alertmanager",
           "v0.34.0", "sha256:690c7b525f4367aa91f73e2f91c632206d32e97c6384bdbf2fb7a861b420340d", _PUBLIC_RECORD),
    # The subcharts, at their charts' defaults (grafana 12.11.1, kube-state-metrics 8.4.0, prometheus-node-exporter
    # 4.56.1 with kube-prometheus-stack's distroless variant).
    _image("grafana", "kube-prometheus-stack", "grafana.image", "sha", "docker.io/grafana/grafana", "13.2.0",
           "sha256:3fd54ae1214669f8355f065ec9f6445d5279a3d77095ab048ca045685272429b", _PUBLIC_RECORD),
    _image("grafanaSidecar", "kube-prometheus-stack", "grafana.sidecar.image", "sha", "quay.io/kiwigrid/k8s-sidecar", "2.10.1",
           "sha256:7eac5c4fed714a18d038fc9fea57d8744d113367935dac0ea4eb6a87cef704a3", _PUBLIC_RECORD),
    _image("kubeStateMetrics", "kube-prometheus-stack", "kube-state-metrics.image", "sha-digest",
           "registry.k8s.io/kube-state-metrics/kube-state-metrics", "v2.20.0",
           "sha256:42cfe3723a5f058171c627537fb57a3ea0f26e4380fa18555a95cb1a1b4cfc5b", _PUBLIC_RECORD),
    _image("nodeExporter", "kube-prometheus-stack", "prometheus-node-exporter.image", "registry-digest", "quay.io/prometheus/node-exporter",
           "v1.12.1-distroless", "sha256:8c9bac11973b94b59be88d6e11fee4429aa743c8846cdc75d65b18db33f6a106", _PUBLIC_RECORD),
)

IMAGES: dict[str, PinnedImage] = {image.name: image for image in CATALOG}
ImagePins = Mapping[str, PinnedImage]


def image_values(chart: str, pins: ImagePins = IMAGES) -> dict[str, Any]:
    """Every image of `chart`, at its values path, in the chart's form: merged over the release's other values."""
    merged: dict[str, Any] = {}
    for image in pins.values():
        if image.chart == chart:
            merged = merge_maps(merged, at_path(image.values_path, image.values()))
    return merged


def airflow_version(image: PinnedImage) -> str:
    """The Airflow version of an Airflow image's tag (3.1.7-python3.12 is 3.1.7): the chart's airflowVersion."""
    return image.tag.split("-")[0]
