"""Tests the digest reader (tools/image_digests.py) against a real registry with token authentication: it reads the
index digest the registry stored, notices a moved tag, and names where a pinned image lives."""

from __future__ import annotations

import dataclasses

import pytest

from components.images import IMAGES
from tests.registry_server import registry
from tools.image_digests import Location, RegistryError, compare, registry_digest


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def test_reads_the_index_digest_the_registry_stored(served):
    """The digest is the one the registry stored the two-platform index under, asked with an anonymous pull token."""
    stored = served.push("team/reader", "1.0", "first build")
    served.tokens.scopes.clear()
    assert registry_digest(f"{served.host}/team/reader", "1.0") == stored
    assert served.tokens.scopes == ["repository:team/reader:pull"]


def test_a_moved_tag_is_told_apart_from_a_pinned_one(served):
    """Pinned at the first push, the image is `same`; after the tag is pushed again with other content, `differs`."""
    first = served.push("team/moved", "2.0", "first build")
    pinned = dataclasses.replace(IMAGES["collector"], repository=f"{served.host}/team/moved", tag="2.0", digest=first)
    assert [(status, digest) for _, status, digest in compare([pinned])] == [("same", first)]
    second = served.push("team/moved", "2.0", "rebuilt")
    assert second != first
    assert [(status, digest) for _, status, digest in compare([pinned])] == [("differs", second)]


def test_an_image_without_a_digest_gets_the_registry_s(served):
    """An image the catalog has no digest for is `missing`, with the digest to pin."""
    stored = served.push("team/new", "0.1", "new image")
    unpinned = dataclasses.replace(IMAGES["airflow"], repository=f"{served.host}/team/new", tag="0.1", digest=None)
    assert [(status, digest) for _, status, digest in compare([unpinned])] == [("missing", stored)]


def test_an_unknown_tag_is_an_error_naming_the_manifest(served):
    """A tag the repository does not have is the registry's 404, not a digest."""
    served.push("team/known", "1.0", "known")
    with pytest.raises(RegistryError, match=rf"^http://{served.host}/v2/team/known/manifests/9\.9 answered 404$"):
        registry_digest(f"{served.host}/team/known", "9.9")


@pytest.mark.parametrize("repository, base, name", [
    ("apache/airflow", "https://registry-1.docker.io", "apache/airflow"),
    ("busybox", "https://registry-1.docker.io", "library/busybox"),
    ("docker.io/grafana/grafana", "https://registry-1.docker.io", "grafana/grafana"),
    ("quay.io/prometheus/prometheus", "https://quay.io", "prometheus/prometheus"),
    ("public.ecr.aws/karpenter/controller", "https://public.ecr.aws", "karpenter/controller"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/otel", "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", "mirror/otel"),
    ("localhost:5000/team/app", "http://localhost:5000", "team/app"),
    ("127.0.0.1:5000/team/app", "http://127.0.0.1:5000", "team/app"),
    ("registry.internal:5000/team/app", "https://registry.internal:5000", "team/app"),
], ids=["hub-org", "hub-official", "hub-explicit", "quay", "ecr-public", "ecr-private", "localhost", "loopback", "private-port"])
def test_location_of_a_repository(repository, base, name):
    """Docker Hub's short names are expanded as a container runtime does; plain HTTP only on the loopback."""
    assert Location.of(repository) == Location(base, name)
