"""Render what reaches the cluster: every Helm Release of a plan through the real chart and a real Helm engine
(helm-python-sdk, Helm's Go SDK without a helm binary), plus the Kubernetes objects the program declares itself, and
validate all of it against the cluster's Kubernetes version and the CRDs the platform's charts ship.

A release renders as `helm install` would render it: the chart's CRDs (crds/, installed first), then its templates,
for the cluster's Kubernetes version, with the API versions of every CRD the platform installs available (the
cluster has them after the first deploy). A chart tree lacking a subchart it names (a source tree, not a published
archive) renders without that subchart, and says so in `omitted`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import helm_python as helm
import pulumi
import yaml
from helm_python import _native

from components.charts import CHARTS
from components.helm_values import merge_maps
from tools.kube_schema import Schemas
from tools.offline import Plan, Resource
from tools.upstream import LocatedChart, locate_chart

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER = "aws:eks/cluster:Cluster"
CRD_KIND = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


@dataclass
class RenderedRelease:
    name: str  # the Helm release name
    namespace: str
    chart: LocatedChart
    objects: list[dict]  # the chart's CRDs first, then every object its templates render
    sources: list[str] = field(default_factory=list)  # each object's YAML as the engine wrote it (what Helm sends)
    omitted: tuple[str, ...] = ()  # subcharts not rendered because the located chart lacks them ("grafana 12.11.1")
    errors: list[str] = field(default_factory=list)  # what the API server would refuse, filled by validate()

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict:
        matches = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} {kind} objects are named {name} in release {self.name}")
        return matches[0]


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> helm.Chart:
    return helm.Chart.load(path)


# Where one manifest ends and the next begins: a line that starts with `---` (what Helm's releaseutil.SplitManifests
# splits on, anchored to the line so that a 4 MB CRD file splits in milliseconds).
_DOCUMENT_SEPARATOR = re.compile(r"^---(?=\s|$)", re.MULTILINE)


def _documents(text: str) -> list[tuple[dict, str]]:
    """The objects of a multi-document manifest with the text of each, parsed by the engine's YAML reader (Kubernetes'
    own, sigs.k8s.io/yaml: a bare `=` is a string, as the API server reads it) outside the interpreter's lock."""
    parts = [part.strip("\n") + "\n" for part in _DOCUMENT_SEPARATOR.split(text) if part.strip()]
    return [pair for doc, part in ((helm.values_from_yaml(part), part) for part in parts) if doc for pair in _items(doc, part)]


def _items(doc: dict, text: str) -> list[tuple[dict, str]]:
    """A `v1 List` is its items, as Helm's client applies it (the resource builder flattens lists); anything else itself."""
    if doc.get("apiVersion") == "v1" and doc.get("kind") == "List":
        return [(item, yaml.dump(item, Dumper=yaml.CSafeDumper, sort_keys=False, width=120)) for item in doc.get("items") or []]
    return [(doc, text)]


@functools.lru_cache(maxsize=None)
def _crds(path: Path) -> tuple[tuple[dict, str], ...]:
    """The CRD objects of a chart's crds/ folders (its subcharts' included), in Helm's install order; the files are
    parsed concurrently, as the engine's reader runs outside the interpreter's lock."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return tuple(pair for pairs in pool.map(lambda crd: _documents(crd["data"]), _load(path).crds) for pair in pairs)


def _path_get(values: dict, dotted: str) -> Any:
    value: Any = values
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _path_set(values: dict, dotted: str, item: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = item


def _without_missing_subcharts(chart: helm.Chart, located: LocatedChart, values: dict) -> tuple[dict, tuple[str, ...]]:
    """The values with every enabled subchart the tree lacks switched off, and the names of those subcharts."""
    merged = chart.merge_values(values)
    values, omitted = copy.deepcopy(values), []
    for name, version, condition in located.missing_dependencies:
        # A condition is a comma-separated list of paths; the first that is set decides (Helm's rule).
        paths = [p.strip() for p in (condition or "").split(",") if p.strip()]
        decided = next((_path_get(merged, p) for p in paths if isinstance(_path_get(merged, p), bool)), True)
        if not decided:
            continue
        if not paths:
            raise ValueError(f"{located} lacks its subchart {name} {version}, which has no condition to leave it out by")
        _path_set(values, paths[0], False)
        omitted.append(f"{name} {version}")
    return values, tuple(omitted)


def crd_api_versions(charts: Iterable[LocatedChart]) -> list[str]:
    """`group/version` and `group/version/Kind` of every CRD in the charts' crds/ folders."""
    versions = set()
    for located in charts:
        for crd, _ in _crds(located.path):
            spec = crd["spec"]
            for version in spec["versions"]:
                versions |= {f"{spec['group']}/{version['name']}", f"{spec['group']}/{version['name']}/{spec['names']['kind']}"}
    return sorted(versions)


_COMPARISON = re.compile(r"(>=|<=|!=|>|<|=)?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?")


def satisfies(version: str, constraint: str) -> bool:
    """Whether Kubernetes `version` ("1.33") meets a Chart.yaml `kubeVersion` constraint: comparisons joined by spaces or
    commas (all must hold) and `||` (either side); a `-0` suffix only admits pre-releases, which compare as their version."""
    have = tuple(int(part) for part in (version.split(".") + ["0", "0"])[:3])
    for alternative in constraint.split("||"):
        comparisons = list(_COMPARISON.finditer(alternative))
        if not comparisons or _COMPARISON.sub("", alternative).strip(" ,"):
            raise ValueError(f"kubeVersion constraint {constraint!r} uses syntax this check does not read")
        results = []
        for match in comparisons:
            op, *numbers = match.groups()
            want = tuple(int(n or 0) for n in numbers)
            results.append({">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want,
                            "!=": have != want}.get(op or "=", have == want))
        if all(results):
            return True
    return False


def release_values(inputs: dict) -> dict:
    """The values the provider hands Helm for a Release: its valueYamlFiles merged in order, then `values` over them."""
    merged: dict = {}
    for asset in inputs.get("valueYamlFiles") or []:
        text = asset.text if isinstance(asset, pulumi.StringAsset) else Path(asset.path).read_text()
        merged = merge_maps(merged, yaml.safe_load(text) or {})
    return merge_maps(merged, inputs.get("values") or {})


def render_release(inputs: dict, kubernetes_version: str, api_versions: list[str]) -> RenderedRelease:
    """Render one helm.v3.Release's inputs (chart, version, name, namespace, values) with its pinned chart."""
    name = inputs["chart"].rsplit("/", 1)[-1]  # an oci:// reference ends in the chart's name
    if name not in CHARTS or CHARTS[name].version != inputs["version"]:
        raise ValueError(f"release {inputs['name']} installs {name} {inputs['version']}, which components/charts.py does not pin")
    located = locate_chart(name)
    chart = _load(located.path)
    # helm install refuses a chart whose kubeVersion the cluster does not meet; so does this render.
    required = chart.metadata.get("kubeVersion")
    if required and not satisfies(kubernetes_version, required):
        raise ValueError(f"{located.chart} requires Kubernetes {required} (its Chart.yaml kubeVersion), not {kubernetes_version}")
    values, omitted = _without_missing_subcharts(chart, located, release_values(inputs))
    options = {"name": inputs["name"], "namespace": inputs["namespace"], "is_install": True,
               "kube_version": f"v{kubernetes_version}.0", "api_versions": api_versions}
    # Chart.render takes no kube_version; the library's render call does (the same call, with the options it decodes).
    manifests = json.loads(_native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(options)))
    # helm install --skip-crds (the Release's skipCrds) leaves the crds/ folders out, as another chart installs them.
    pairs = [] if inputs.get("skipCrds") else list(_crds(located.path))  # shared between renders: read, never change
    for path in sorted(manifests):
        if not path.endswith("NOTES.txt"):  # renders to text for a person, not to objects
            pairs += _documents(manifests[path])
    return RenderedRelease(inputs["name"], inputs["namespace"], located, objects=[doc for doc, _ in pairs],
                           sources=[text for _, text in pairs], omitted=omitted)


def kubernetes_version(plan: Plan) -> str:
    clusters = plan.of_type(CLUSTER)
    if len(clusters) != 1:
        raise ValueError(f"the plan has {len(clusters)} EKS clusters; the renders need exactly one to know the Kubernetes version")
    return clusters[0].inputs["version"]


def releases(plan: Plan) -> list[Resource]:
    return plan.of_type(RELEASE)


def render_plan(plan: Plan) -> list[RenderedRelease]:
    """Every Release of the plan, rendered (concurrently: the engine runs outside the interpreter's lock)."""
    version = kubernetes_version(plan)
    api_versions = crd_api_versions(locate_chart(name) for name in CHARTS)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda r: render_release(r.inputs, version, api_versions), releases(plan)))


def _whole(value: Any) -> Any:
    """The engine's wire format has only floats; the API server takes 4.0 where an integer belongs, but say 4."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def program_objects(plan: Plan) -> list[dict]:
    """The Kubernetes objects the program declares itself (not through a chart), as the provider sends them."""
    return [_whole(r.inputs) for r in plan.resources
            if r.type.startswith("kubernetes:") and r.type != RELEASE and r.custom]


def validate(plan: Plan, rendered: list[RenderedRelease]) -> list[str]:
    """Validate every rendered object (into each release's `errors`) and every object the program declares; returns
    the program's own errors."""
    crds = [o for release in rendered for o in release.objects if (o.get("apiVersion"), o.get("kind")) == CRD_KIND]
    schemas = Schemas(kubernetes_version(plan), crds)
    for release in rendered:
        release.errors = [e for o in release.objects for e in schemas.errors(o)]
    return [e for o in program_objects(plan) for e in schemas.errors(o)]


def _shown(obj: dict, source: str) -> str:
    """The object's YAML as rendered, but a Secret's values each replaced by a short digest: a reviewer sees that a value
    changed, never the value."""
    if (obj.get("apiVersion"), obj.get("kind")) != ("v1", "Secret"):
        return source
    shown = dict(obj)
    for key in ("data", "stringData"):
        if isinstance(obj.get(key), dict):
            shown[key] = {k: f"[secret sha256:{hashlib.sha256(str(v).encode()).hexdigest()[:12]}]" for k, v in obj[key].items()}
    return yaml.dump(shown, Dumper=yaml.CSafeDumper, sort_keys=False, width=120)


def manifest_file_name(obj: dict, release_namespace: str) -> str:
    """<kind>-<name>.yaml, with the namespace between them for an object a chart puts outside the release's namespace."""
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    parts = [obj["kind"].lower(), namespace if namespace != release_namespace else None, metadata.get("name")]
    return "-".join(p for p in parts if p) + ".yaml"


def write_manifests(rendered: list[RenderedRelease], directory: Path) -> None:
    """One file per object under directory/<release>/, so two commits' manifests diff object by object; files of an
    earlier plan that no longer render are removed."""
    if directory.exists():
        shutil.rmtree(directory)
    for release in rendered:
        folder = directory / release.name
        folder.mkdir(parents=True)
        for obj, source in zip(release.objects, release.sources):
            (folder / manifest_file_name(obj, release.namespace)).write_text(_shown(obj, source))
