"""Images pulled by digest: a tag is a name its publisher (or whoever takes the repository over) can point at other
content, so what a node pulls by tag tomorrow is not what was reviewed today. A digest names the content itself.

A Release's images are read from its values (helm.py): every image map (`repository` with a `tag`, `digest` or `sha`)
and every `image` string anywhere in them, and, for the charts the platform installs, the values that name each image
the chart renders, which must be set: left unset, the chart's default is pulled by its tag. Pods the program declares
itself (Deployments, Jobs and the like) are read from their pod templates.

A stack's policy config may exempt an image by its exact reference (`exempt`: reference -> reason), as a reviewed
exception: one whose digest has not been read yet, say. The exemption names the tag, so a new tag is judged again.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Mapping, Optional

from .helm import RELEASE, chart, values
from .model import UNKNOWN, Resource, Stack, path, policy

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HEX = re.compile(r"[0-9a-f]{64}")
# What the program declares with a pod template, and where the template is.
POD_TEMPLATES = {
    "kubernetes:apps/v1:Deployment": "spec.template.spec", "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec", "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec", "kubernetes:core/v1:Pod": "spec",
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# The values of each chart the platform installs that name an image it renders with the platform's settings (every
# other image value of these charts belongs to a component the platform leaves off). components/images.py pins them;
# tests/test_images.py holds the two tables to each other and to what the charts render.
CHART_IMAGES: dict[str, tuple[str, ...]] = {
    "airflow": ("images.airflow", "images.pod_template", "images.pgbouncer", "images.pgbouncerExporter", "images.redis"),
    "keda": ("image.keda", "image.metricsApiServer", "image.webhooks"),
    "opentelemetry-collector": ("image",),
    "aws-load-balancer-controller": ("image",),
    "karpenter": ("controller.image",),
    "kube-prometheus-stack": (
        "prometheusOperator.image", "prometheusOperator.prometheusConfigReloader.image", "prometheusOperator.thanosImage",
        "prometheusOperator.admissionWebhooks.patch.image", "prometheus.prometheusSpec.image", "alertmanager.alertmanagerSpec.image",
        "grafana.image", "grafana.sidecar.image", "kube-state-metrics.image", "prometheus-node-exporter.image"),
}
# An image a chart renders only while a component of it is on: the image value -> the switch, and its chart default.
SWITCHED = {"images.redis": ("redis.enabled", True), "images.pgbouncer": ("pgbouncer.enabled", False),
            "images.pgbouncerExporter": ("pgbouncer.enabled", False)}


def pinned_reference(reference: str) -> bool:
    """Whether an image reference names a digest: <repository>[:<tag>]@sha256:<hex>."""
    _, at, digest = reference.rpartition("@")
    return bool(at) and DIGEST.fullmatch(digest) is not None


def _is_image_map(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("repository"), str) and bool({"tag", "digest", "sha"} & set(value))


def _map_pinned(image: Mapping[str, Any]) -> Optional[bool]:
    """Whether an image map of a chart's values names a digest (None: a part of it is not known yet). The charts spell
    it three ways: `digest: sha256:<hex>` (Airflow's, Karpenter's, the collector's, node-exporter's), `sha: <hex>` or
    `sha: sha256:<hex>` (kube-prometheus-stack's, Grafana's, kube-state-metrics'), or the digest after the tag (`tag: <tag>@sha256:<hex>`, which a chart printing repository:tag
    passes on as it is)."""
    parts = [image.get(key) for key in ("repository", "tag", "digest", "sha")]
    if any(part is UNKNOWN for part in parts):
        return None
    repository, tag, digest, sha = (part if isinstance(part, str) else "" for part in parts)
    return bool(DIGEST.fullmatch(digest) or HEX.fullmatch(sha.removeprefix("sha256:")) or pinned_reference(tag)
                or pinned_reference(repository))


def _spelled(image: Mapping[str, Any]) -> str:
    registry, repository, tag = (image.get(key) or "" for key in ("registry", "repository", "tag"))
    return f"{registry + '/' if registry else ''}{repository}{':' + tag if tag else ''}"


def _unpinned_in_values(tree: Any, where: str) -> Iterator[tuple[str, str]]:
    """(path, reference) of every image of nested values named by tag alone."""
    if tree is UNKNOWN:
        return
    if _is_image_map(tree):
        if _map_pinned(tree) is False:
            yield where, _spelled(tree)
        return
    if isinstance(tree, Mapping):
        for key, item in tree.items():
            place = f"{where}.{key}" if where else str(key)
            if key == "image" and isinstance(item, str) and not pinned_reference(item):
                yield place, item
            else:
                yield from _unpinned_in_values(item, place)
    elif isinstance(tree, (list, tuple)):
        for index, item in enumerate(tree):
            yield from _unpinned_in_values(item, f"{where}[{index}]")


def _release_problems(release: Resource, exempt: Mapping[str, str]) -> Iterator[str]:
    tree = values(release)
    places: dict[str, list[str]] = {}  # one message per image, however many containers run it
    for where, reference in _unpinned_in_values(tree, ""):
        if reference not in exempt:
            places.setdefault(reference, []).append(where)
    for reference, where in places.items():
        more = f" and {len(where) - 1} more" if len(where) > 1 else ""
        yield f"{where[0]}{more} pull {reference}, by tag alone" if more else f"{where[0]} is {reference}, by tag alone"
    for dotted in CHART_IMAGES.get(chart(release), ()):
        switch, default = SWITCHED.get(dotted, (None, True))
        if path(tree, dotted) is None and (path(tree, switch, default) if switch else True):
            yield f"{dotted} is not set, so the chart's default image is pulled by its tag"


def _pod_problems(resource: Resource, exempt: Mapping[str, str]) -> Iterator[str]:
    spec = resource.get(POD_TEMPLATES[resource.type])
    if not isinstance(spec, Mapping):
        return
    for kind in CONTAINER_LISTS:
        containers = spec.get(kind)
        for container in containers if isinstance(containers, list) else []:
            reference = container.get("image") if isinstance(container, Mapping) else None
            if isinstance(reference, str) and not pinned_reference(reference) and reference not in exempt:
                yield f"{kind} {container.get('name')} runs {reference}, by tag alone"


@policy("image-pinned-by-digest", types=(RELEASE, *POD_TEMPLATES), severity="high", checkov=("CKV_K8S_43",),
        config_schema={"exempt": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}, "default": {},
                                  "description": "Images allowed by tag alone for now: the exact reference (repository:tag) -> why."}},
        description="Every image a release or a pod of the stack runs is pulled by digest, not by a tag its publisher can move.",
        remediation="Name the image as <repository>:<tag>@sha256:<index digest> where it is set: components/images.py or the stack's "
                    "images.<name>.digest (airflow.dagSync.image for objinsync); `python -m tools.image_digests` reads a tag's digest "
                    "from its registry.")
def image_pinned_by_digest(resource: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    kind = "release" if resource.type == RELEASE else resource.type.rsplit(":", 1)[-1]
    exempt = config.get("exempt", {})
    found = _release_problems(resource, exempt) if resource.type == RELEASE else _pod_problems(resource, exempt)
    return [f"{kind} {resource.name}: {problem}" for problem in found]
