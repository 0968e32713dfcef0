"""Tests the one module that locates upstream artefacts: the search order, complete copies before incomplete ones, the
cache's digest check, the sentences when something is missing, and a fresh clone with nothing beside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from components.charts import CHARTS, PinnedChart
from tools import render, upstream
from tools.offline import ROOT

DEMO = PinnedChart("demo", "1.0.0", "https://charts.example.com", None, "https://charts.example.com/index.yaml")


def write_chart(directory: Path, name: str, version: str, dependencies: list[dict] = (), values: dict | None = None) -> Path:
    """A small chart tree: one ConfigMap per chart, and the given dependencies declared in Chart.yaml."""
    directory.mkdir(parents=True)
    (directory / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": name, "version": version,
                                                          "dependencies": list(dependencies)}))
    (directory / "values.yaml").write_text(yaml.safe_dump(values or {}))
    (directory / "templates").mkdir()
    (directory / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\ndata:\n  chart: {{ .Chart.Name }}\n")
    return directory


def demo_tree(directory: Path, with_child: bool, child_enabled: bool = True, condition: str | None = "child.enabled") -> Path:
    dependency = {"name": "child", "version": "0.1.0", **({"condition": condition} if condition else {})}
    tree = write_chart(directory / "demo-1.0.0", "demo", "1.0.0", [dependency], {"child": {"enabled": child_enabled}})
    if with_child:
        write_chart(tree / "charts" / "child", "child", "0.1.0")
    return tree


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty stand-ins for $AIRFLOW_PLATFORM_CHARTS, ../shared and the cache, and the demo chart pinned beside the real ones."""
    explicit, shared, cache = tmp_path / "explicit", tmp_path / "shared", tmp_path / "cache"
    for directory in (explicit, shared / "charts", cache):
        directory.mkdir(parents=True)
    monkeypatch.setenv(upstream.CHARTS_ENV, str(explicit))
    monkeypatch.setattr(upstream, "SHARED", shared)
    monkeypatch.setattr(upstream, "CACHE", cache)
    monkeypatch.setitem(upstream.CHARTS, "demo", DEMO)
    upstream.locate_chart.cache_clear()
    yield explicit, shared / "charts", cache
    upstream.locate_chart.cache_clear()


def test_shared_comes_before_the_cache(places):
    """With nothing in the explicit directory, ../shared/charts is taken before the cache."""
    _, shared, cache = places
    demo_tree(shared, with_child=True)
    archive = Path(helm.package(demo_tree(cache.parent / "build", with_child=True), destination=cache))
    upstream.CHARTS["demo"] = PinnedChart("demo", "1.0.0", DEMO.repository, upstream.sha256(archive), DEMO.digest_source)
    assert [c.origin for c in upstream.candidates(upstream.CHARTS["demo"])] == [str(shared), str(cache)]
    assert upstream.locate_chart("demo").path == shared / "demo-1.0.0"


def test_explicit_directory_comes_first(places):
    """A chart in $AIRFLOW_PLATFORM_CHARTS is taken before the same chart in ../shared/charts."""
    explicit, shared, _ = places
    demo_tree(shared, with_child=True)
    demo_tree(explicit, with_child=True)
    located = upstream.locate_chart("demo")
    assert (located.path, located.origin, located.missing_dependencies) == (
        explicit / "demo-1.0.0", f"${upstream.CHARTS_ENV} ({explicit})", ())


def test_complete_copy_wins_over_an_earlier_incomplete_one(places):
    """A source tree without a subchart it names loses to a complete archive later in the order."""
    explicit, _, cache = places
    demo_tree(explicit, with_child=False)
    archive = Path(helm.package(demo_tree(cache.parent / "build", with_child=True), destination=cache))
    upstream.CHARTS["demo"] = PinnedChart("demo", "1.0.0", DEMO.repository, upstream.sha256(archive), DEMO.digest_source)
    located = upstream.locate_chart("demo")
    assert (located.path, located.missing_dependencies) == (archive, ())


def test_incomplete_copy_is_used_when_it_is_the_only_one(places):
    """With no complete copy anywhere, the incomplete tree is located, with what it lacks."""
    explicit, _, _ = places
    demo_tree(explicit, with_child=False)
    assert upstream.locate_chart("demo").missing_dependencies == (("child", "0.1.0", "child.enabled"),)


def test_cache_archive_must_have_the_pinned_digest(places):
    """An archive in the cache that is not the pinned one is refused, naming the chart and both digests."""
    _, _, cache = places
    archive = Path(helm.package(demo_tree(cache.parent / "build", with_child=True), destination=cache))
    pinned = "0" * 64
    upstream.CHARTS["demo"] = PinnedChart("demo", "1.0.0", DEMO.repository, pinned, DEMO.digest_source)
    with pytest.raises(upstream.UpstreamMissing) as refused:
        upstream.locate_chart("demo")
    assert str(refused.value) == (
        f"demo 1.0.0: the archive {archive} has sha256 {upstream.sha256(archive)}, but the pinned digest is {pinned}; it was refused "
        "(delete it and run `make charts` to pull it again from a repository you trust).")


def test_missing_chart_is_one_sentence(places):
    """A chart found nowhere names itself, every place searched, and the command that fetches it."""
    explicit, shared, cache = places
    with pytest.raises(upstream.UpstreamMissing) as missing:
        upstream.locate_chart("demo")
    assert str(missing.value) == (
        f"The Helm chart demo 1.0.0 was not found in ${upstream.CHARTS_ENV} ({explicit}), {shared}, {cache}: run `make charts` to pull "
        f"it (from the stack's chartRepositories), or point ${upstream.CHARTS_ENV} at a directory holding demo-1.0.0/ or demo-1.0.0.tgz.")


def test_missing_metric_list_is_one_sentence(tmp_path, monkeypatch):
    """Airflow's metric list, which no chart carries, is looked for in $AIRFLOW_PLATFORM_SCHEMAS and ../shared/schemas."""
    monkeypatch.setenv(upstream.SCHEMAS_ENV, str(tmp_path / "schemas"))
    monkeypatch.setattr(upstream, "SHARED", tmp_path / "shared")
    with pytest.raises(upstream.UpstreamMissing) as missing:
        upstream.airflow_metrics()
    assert str(missing.value) == (
        f"Airflow's metric list airflow-metrics.txt was not found in {tmp_path / 'schemas'}, {tmp_path / 'shared' / 'schemas'}: point "
        "$AIRFLOW_PLATFORM_SCHEMAS at a directory holding it (an extract of Airflow's metrics.rst tables, name<TAB>type<TAB>description).")


class TestIncompleteRender:
    """Tests how a chart tree without one of its subcharts renders."""

    def inputs(self, values: dict | None = None) -> dict:
        return {"chart": "demo", "version": "1.0.0", "name": "demo", "namespace": "demo", "values": values or {}}

    def test_complete_tree_renders_its_subchart(self, places):
        """With the subchart present, both charts' objects render and nothing is omitted."""
        demo_tree(places[0], with_child=True)
        rendered = render.render_release(self.inputs(), "1.33", [])
        assert ([o["metadata"]["name"] for o in rendered.objects], rendered.omitted) == (["child", "demo"], ())

    def test_missing_enabled_subchart_is_left_out_and_said(self, places):
        """An enabled subchart the tree lacks is switched off by its condition and named in `omitted`."""
        demo_tree(places[0], with_child=False)
        rendered = render.render_release(self.inputs(), "1.33", [])
        assert ([o["metadata"]["name"] for o in rendered.objects], rendered.omitted) == (["demo"], ("child 0.1.0",))

    def test_missing_disabled_subchart_is_not_a_loss(self, places):
        """A subchart the values switch off renders nothing anyway: it is not reported."""
        demo_tree(places[0], with_child=False)
        rendered = render.render_release(self.inputs({"child": {"enabled": False}}), "1.33", [])
        assert rendered.omitted == ()

    def test_missing_subchart_without_condition_is_refused(self, places):
        """A subchart that no condition can switch off cannot be left out: the render stops and says so."""
        demo_tree(places[0], with_child=False, condition=None)
        with pytest.raises(ValueError) as refused:
            render.render_release(self.inputs(), "1.33", [])
        assert str(refused.value) == (f"demo 1.0.0 from ${upstream.CHARTS_ENV} ({places[0]}) lacks its subchart child 0.1.0, "
                                      "which has no condition to leave it out by")


def test_render_sees_the_clusters_version_and_apis(places):
    """The engine gets the cluster's Kubernetes version and the CRD APIs the platform installs, as Helm gets them from a
    live cluster: a template that asks sees them."""
    tree = write_chart(places[0] / "demo-1.0.0", "demo", "1.0.0")
    (tree / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: capabilities\ndata:\n"
        "  version: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        "  monitoring: {{ .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" | quote }}\n"
        "  autoscaler: {{ .Capabilities.APIVersions.Has \"autoscaling.k8s.io/v1\" | quote }}\n")
    inputs = {"chart": "demo", "version": "1.0.0", "name": "demo", "namespace": "demo", "values": {}}
    [config_map] = render.render_release(inputs, "1.33", ["monitoring.coreos.com/v1"]).objects
    assert config_map["data"] == {"version": "v1.33.0", "monitoring": "true", "autoscaler": "false"}


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The repository's tracked and new files copied where nothing lies beside them (no ../shared)."""
    clone = tmp_path_factory.mktemp("fresh") / "main"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    return clone


def test_fresh_clone_tests_stop_with_one_sentence(fresh_clone):
    """Without ../shared and before `make charts`, a test run that needs the charts stops before any test, saying how to fetch them."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(fresh_clone)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_rendered_validation.py"],
                            cwd=fresh_clone, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "The Helm chart karpenter-crd 1.14.1 was not found in ../shared/charts, .cache/charts: run `make charts` to pull it" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_fresh_clone_plan_stops_with_one_sentence(fresh_clone):
    """The offline plan in the same clone exits 2 with the same sentence, and no traceback."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(fresh_clone)}
    result = subprocess.run([sys.executable, "-m", "tools.plan", "dev"], cwd=fresh_clone, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("manifests: The Helm chart karpenter-crd 1.14.1 was not found in ../shared/charts, .cache/charts: run `make charts`")
    assert "Traceback" not in result.stderr
