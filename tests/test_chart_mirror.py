"""Tests `make charts` over the network for real: the charts, archived by Helm from the copies the tests render, served
on 127.0.0.1 as a Helm repository and as an OCI registry, pulled through a stack's chartRepositories, and each kept only
when its sha256 is the one it must have."""

from __future__ import annotations

import shutil
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from components.charts import CHARTS, PinnedChart
from tests.chart_servers import helm_repository, oci_registry
from tests.conftest import stack_config
from tools import charts as make_charts
from tools import render, upstream


@pytest.fixture(scope="module")
def archives(tmp_path_factory, located_chart) -> dict[str, Path]:
    """Every pinned chart as an archive Helm writes from the copy the tests render (what a mirror would hold, but not the
    published bytes: the pinned digests are those of the official archives)."""
    directory = tmp_path_factory.mktemp("archives")
    found = {}
    for name in CHARTS:
        with helm.Chart.load(located_chart(name).path) as chart:
            found[name] = Path(chart.save(directory))
    return found


@pytest.fixture(scope="module")
def served(archives, tmp_path_factory):
    """A Helm repository on 127.0.0.1 with an index.yaml Helm generated for those archives; yields its URL and folder."""
    folder = tmp_path_factory.mktemp("repository")
    for archive in archives.values():
        shutil.copy(archive, folder)
    with helm_repository(folder) as host:
        helm.repo_index_generate(folder, base_url=f"http://{host}")
        yield f"http://{host}", folder


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def digests(archives: dict[str, Path]) -> dict[str, str]:
    return {name: upstream.sha256(path) for name, path in archives.items()}


def stack_file(tmp_path: Path, repository: str) -> Path:
    """The dev stack, installing every chart from `repository`."""
    config = stack_config("dev")
    config["airflow-platform:chartRepositories"] = {name: repository for name in CHARTS}
    path = tmp_path / "Pulumi.mirror.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def test_the_index_lists_what_is_served(served, archives):
    """The mirror's index.yaml records each archive's sha256, as a published repository's does."""
    url, folder = served
    index = yaml.safe_load((folder / "index.yaml").read_text())
    assert {name: [(e["version"], e["digest"]) for e in index["entries"][name]] for name in CHARTS} == {
        name: [(CHARTS[name].version, digest)] for name, digest in digests(archives).items()}


def test_pinned_digests_refuse_what_is_not_the_published_archive(served, archives, cache, tmp_path, monkeypatch, capsys):
    """`make charts` against the mirror refuses every archive: none is the official one its pinned digest names."""
    url, _ = served
    monkeypatch.setattr(make_charts, "CACHE", cache)
    assert make_charts.main(["--file", str(stack_file(tmp_path, url))]) == 1
    served_digests = digests(archives)
    assert capsys.readouterr().err.splitlines() == [
        f"{chart} from {url} was refused: its archive has sha256 {served_digests[name]}, but the pinned digest is {chart.digest}."
        if chart.digest else
        f"{chart} has no pinned digest yet, so it is not pulled: read `digest` from {chart.digest_source} and record it in "
        "components/charts.py."
        for name, chart in CHARTS.items()]
    assert [p.name for p in cache.iterdir() if p.suffix == ".tgz"] == []


def test_mirror_provides_the_charts_the_tests_render(served, archives, cache, monkeypatch):
    """With the digests of what the mirror serves, every chart is kept, and renders from the cache alone as from its source."""
    url, _ = served
    kept, refused = make_charts.pull_all({name: url for name in CHARTS}, cache, digests(archives))
    assert (refused, sorted(p.name for p in kept)) == ([], sorted(chart.archive for chart in CHARTS.values()))
    assert {p.name: upstream.sha256(p) for p in kept} == {a.name: upstream.sha256(a) for a in archives.values()}

    inputs = {"chart": "keda", "version": "2.20.2", "name": "keda", "namespace": "keda", "values": {"crds": {"install": True}}}
    from_source = render.render_release(inputs, "1.33", [])
    pinned = {name: PinnedChart(c.name, c.version, c.repository, digests(archives)[name], c.digest_source) for name, c in CHARTS.items()}
    monkeypatch.delenv(upstream.CHARTS_ENV, raising=False)
    monkeypatch.setattr(upstream, "SHARED", cache / "nothing-beside")
    monkeypatch.setattr(upstream, "CACHE", cache)
    monkeypatch.setattr(upstream, "CHARTS", pinned)
    upstream.locate_chart.cache_clear()
    try:
        from_cache = render.render_release(inputs, "1.33", [])
    finally:
        upstream.locate_chart.cache_clear()
    assert (from_cache.chart.path, from_cache.chart.origin) == (cache / "keda-2.20.2.tgz", str(cache))
    assert from_cache.objects == from_source.objects and len(from_cache.objects) > 20


def test_tampered_archive_is_refused(served, archives, cache, tmp_path):
    """An archive changed on the mirror after it was indexed is refused, naming the chart and both digests, and not kept."""
    url, folder = served
    original = (folder / "keda-2.20.2.tgz").read_bytes()
    tree = tmp_path / "keda"
    helm.expand(tmp_path, archives["keda"])
    (tree / "templates" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n")
    tampered = Path(helm.package(tree, destination=tmp_path / "tampered"))
    shutil.copy(tampered, folder / "keda-2.20.2.tgz")
    try:
        expected = digests(archives)["keda"]
        with pytest.raises(make_charts.ChartRefused) as refused:
            make_charts.pull(CHARTS["keda"], url, cache, expected)
    finally:
        (folder / "keda-2.20.2.tgz").write_bytes(original)
    assert str(refused.value) == (f"keda 2.20.2 from {url} was refused: its archive has sha256 {upstream.sha256(tampered)}, "
                                  f"but the pinned digest is {expected}.")
    assert not (cache / "keda-2.20.2.tgz").exists()


def test_oci_registry_mirror(archives, cache, tmp_path):
    """Charts pushed to an OCI registry are pulled by reference and checked the same way; a different archive pushed under
    the same version is refused."""
    with oci_registry() as host:
        registry = f"oci://{host}/helm-charts"
        for archive in archives.values():
            helm.push(archive, registry, plain_http=True)
        kept, refused = make_charts.pull_all({name: registry for name in CHARTS}, cache, digests(archives))
        assert (refused, {p.name: upstream.sha256(p) for p in kept}) == ([], {a.name: upstream.sha256(a) for a in archives.values()})

        helm.expand(tmp_path, archives["opentelemetry-collector"])
        (tmp_path / "opentelemetry-collector" / "templates" / "extra.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n")
        other = Path(helm.package(tmp_path / "opentelemetry-collector", destination=tmp_path / "other"))
        helm.push(other, f"oci://{host}/elsewhere", plain_http=True)
        with pytest.raises(make_charts.ChartRefused) as caught:
            make_charts.pull(CHARTS["opentelemetry-collector"], f"oci://{host}/elsewhere", tmp_path / "second-cache",
                             digests(archives)["opentelemetry-collector"])
    assert str(caught.value) == (f"opentelemetry-collector 0.170.0 from oci://{host}/elsewhere was refused: its archive has sha256 "
                                 f"{upstream.sha256(other)}, but the pinned digest is {digests(archives)['opentelemetry-collector']}.")


def test_unreachable_repository_is_one_sentence(cache):
    """A repository that does not answer is named with the reason Helm gives, on one line."""
    with pytest.raises(make_charts.ChartRefused) as refused:
        make_charts.pull(CHARTS["keda"], "http://127.0.0.1:9", cache, "0" * 64)
    message = str(refused.value)
    assert message.startswith("keda 2.20.2 could not be pulled from http://127.0.0.1:9: ") and "\n" not in message
