"""Tests the pinned images: every image that a rendered pod, custom resource or operator flag names is one of
components/images.py's, by digest where the catalog has one; the pack knows the same image values; a stack's `images`
keeps a mirror's digest, drops it for a new tag, and refuses what is not an image."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest
import yaml

from components.config import ConfigError
from components.images import CATALOG, DIGEST, IMAGES
from policies.airflow_guard.engine import CONFIG_DIR, load_config
from policies.airflow_guard.images import CHART_IMAGES
from tools import render
from tools.checkov_scan import PROGRAM
from tools.offline import typed_config
from tests.conftest import stack_config

VARIANTS = ("dev", "prod", "prod-celery-and-kubernetes", "dev-with-pgbouncer")
# The operator's flags that hand an image to what it creates (the config reloader beside Prometheus and Alertmanager,
# Thanos for a sidecar).
IMAGE_FLAG = re.compile(r"--(prometheus-config-reloader|thanos-default-base-image)=(\S+)")


def _references(node: Any) -> Iterator[str]:
    """Every image a manifest names: `image` fields, the operator's image flags, and the pod templates Airflow keeps as
    YAML in a ConfigMap."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            elif isinstance(value, str) and key.endswith(".yaml") and "image:" in value:
                yield from _references(yaml.safe_load(value))
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, str):
        yield from (match.group(2) for match in IMAGE_FLAG.finditer(node))


def rendered_images(result) -> dict[str, set[str]]:
    """source (release or program) -> the images its objects name."""
    found = {name: set(_references(release.objects)) for name, release in result.releases.items()}
    found[PROGRAM] = set(_references(render.program_objects(result.plan)))
    return found


def test_catalog_defaults_are_pinned_or_say_where_to_read_the_digest():
    """Each default has a well-formed digest, or none and a source saying where it is to be read."""
    assert [i.name for i in CATALOG if i.digest is not None and not DIGEST.fullmatch(i.digest)] == []
    assert [i.name for i in CATALOG if i.digest is None and not i.digest_source.startswith("not read yet")] == []
    assert len(IMAGES) == len(CATALOG)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_image_is_a_pinned_one(rendering, variant):
    """What a pod would pull is exactly a catalog entry's reference (digest included), or the stack's objinsync image."""
    result = rendering(variant)
    allowed = {image.reference for image in result.cfg.images.pinned().values()} | {result.cfg.airflow.dag_sync.image}
    assert {source: sorted(found - allowed) for source, found in rendered_images(result).items() if found - allowed} == {}


def test_every_catalog_entry_is_rendered(rendering):
    """No entry is dead: each is named by a render of some variant, unless its chart's tree here lacks the subchart that
    runs it (then the values are all there is to check)."""
    rendered = set().union(*(found for variant in VARIANTS for found in rendered_images(rendering(variant)).values()))
    omitted = {subchart.split()[0] for subchart in rendering("prod").releases["kube-prometheus-stack"].omitted}
    unrendered = [image.name for image in CATALOG if image.reference not in rendered and image.values_path.split(".")[0] not in omitted]
    assert unrendered == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_exemptions_are_exactly_the_unpinned_images_the_stack_runs(rendering, stack):
    """The stack's policy config exempts each image it runs that has no digest yet, and nothing else: an exemption goes
    when its image gets a digest."""
    result = rendering(stack)
    unpinned = {image.reference for image in result.cfg.images.pinned().values() if image.digest is None}
    running = set().union(*rendered_images(result).values())
    exempt = load_config(CONFIG_DIR / f"{stack}.json")["image-pinned-by-digest"]["exempt"]
    assert sorted(exempt) == sorted(unpinned & running)


def test_the_pack_knows_the_image_values_of_each_chart():
    """The pack's table of image values is the catalog's, with the pod template the Airflow image also fills."""
    catalog: dict[str, set[str]] = {}
    for image in CATALOG:
        catalog.setdefault(image.chart, set()).add(image.values_path)
    catalog["airflow"].add("images.pod_template")
    assert {chart: set(paths) for chart, paths in CHART_IMAGES.items()} == catalog


def _pinned(images: dict[str, Any], stack: str = "dev") -> dict:
    config = stack_config(stack)
    config["airflow-platform:images"] = images
    return typed_config(config).images.pinned()


OTHER = "sha256:" + "ab" * 32


@pytest.mark.parametrize("override, expected", [
    ({}, (IMAGES["collector"].repository, "0.158.0", IMAGES["collector"].digest)),
    ({"repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hub/otel"},
     ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/hub/otel", "0.158.0", IMAGES["collector"].digest)),
    ({"tag": "0.159.0"}, (IMAGES["collector"].repository, "0.159.0", None)),
    ({"tag": "0.159.0", "digest": OTHER}, (IMAGES["collector"].repository, "0.159.0", OTHER)),
], ids=["default", "mirror-keeps-digest", "new-tag-drops-digest", "new-tag-with-digest"])
def test_a_stack_override(override, expected):
    """A mirror serves the same manifests, so the digest stays; another tag has another digest, unknown until given."""
    image = _pinned({"collector": override})["collector"]
    assert (image.repository, image.tag, image.digest) == expected


@pytest.mark.parametrize("images, sentence", [
    ({"grafna": {}}, "Config key 'airflow-platform:images.grafna' is not a known key; the known keys there are: "
                     + ", ".join(sorted(IMAGES)) + "."),
    ({"airflow": {"tag": "2.10.5"}},
     "Config key 'airflow-platform:images.airflow.tag' must be an Airflow 3 image tag, like 3.1.7 or 3.1.7-python3.12 (got \"2.10.5\")."),
    ({"collector": {"tag": "latest"}}, "Config key 'airflow-platform:images.collector.tag' must be an image tag (not latest), like v3.14.0 (got \"latest\")."),
    ({"collector": {"digest": "sha256:abc"}},
     "Config key 'airflow-platform:images.collector.digest' must be a sha256 digest, like sha256:<64 hexadecimal digits> (got \"sha256:abc\")."),
    ({"collector": {"repository": "Quay.io/otel:1"}},
     "Config key 'airflow-platform:images.collector.repository' must be an image repository without tag or digest, like "
     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/quay/prometheus/prometheus (got \"Quay.io/otel:1\")."),
], ids=["unknown-image", "airflow-2", "latest", "short-digest", "not-a-repository"])
def test_bad_images_are_refused(images, sentence):
    """Each mistake stops the run with one sentence naming the key."""
    with pytest.raises(ConfigError) as refused:
        _pinned(images)
    assert str(refused.value) == sentence
