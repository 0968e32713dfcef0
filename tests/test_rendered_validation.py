"""Tests that what reaches the cluster would be accepted: every release of every variant rendered by its real chart, and
every Kubernetes object the program declares itself, validated for the cluster's Kubernetes version (unknown fields
refused) and, for custom resources, against the CRDs the platform's charts ship."""

from __future__ import annotations

import copy

import pytest

from tests.conftest import VARIANTS
from tools import render
from tools.kube_schema import Schemas
from tools.render import CRD_KIND

RELEASES = ["airflow", "aws-load-balancer-controller", "karpenter", "karpenter-crd", "keda", "kube-prometheus-stack", "otel-collector"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_release_renders_and_every_object_validates(rendering, variant):
    """All seven releases render with the program's values, and no rendered or declared object would be refused."""
    result = rendering(variant)
    assert sorted(result.releases) == RELEASES
    assert {name: release.errors for name, release in result.releases.items()} == {name: [] for name in RELEASES}
    assert result.program_errors == []


def test_renders_are_for_the_clusters_version(rendering):
    """The engine is told the cluster's Kubernetes version, as Helm is by a live cluster: a chart's kubeVersion bound applies."""
    prod = rendering("prod")
    [stack] = [r for r in prod.plan.of_type(render.RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    assert prod.cfg.cluster.kubernetes_version == "1.33"
    with pytest.raises(ValueError) as refused:
        render.render_release(stack.inputs, "1.24", [])
    assert str(refused.value) == "kube-prometheus-stack 88.5.3 requires Kubernetes >=1.25.0-0 (its Chart.yaml kubeVersion), not 1.24"


@pytest.mark.parametrize("version, constraint, met", [
    ("1.33", ">=1.25.0-0", True), ("1.24", ">=1.25.0-0", False), ("1.33", ">=v1.23.0-0", True), ("1.33", ">= 1.24.0-0, < 1.34.0", True),
    ("1.34", ">= 1.24.0-0, < 1.34.0", False), ("1.33", "<1.30 || >=1.33", True), ("1.31", "<1.30 || >=1.33", False),
], ids=["at-least", "below", "v-prefix", "range-in", "range-out", "either-met", "neither-met"])
def test_kube_version_constraints(version, constraint, met):
    """Chart.yaml kubeVersion constraints are read as Helm reads them (pre-release suffixes, ranges, alternatives)."""
    assert render.satisfies(version, constraint) is met


def test_custom_resources_of_every_kind_are_checked(rendering):
    """Each custom resource kind that reaches the cluster has a CRD schema from the charts (none passes unchecked)."""
    prod = rendering("prod")
    objects = [o for release in prod.releases.values() for o in release.objects]
    crds = [o for o in objects if (o["apiVersion"], o["kind"]) == CRD_KIND]
    served = {(f"{c['spec']['group']}/{v['name']}", c["spec"]["names"]["kind"]) for c in crds for v in c["spec"]["versions"]}
    custom = {(o["apiVersion"], o["kind"]) for o in objects + [r.inputs for r in prod.plan.resources if r.type.startswith("kubernetes:")]
              if "." in o.get("apiVersion", "").split("/")[0] and not o["apiVersion"].endswith(".k8s.io/v1")}
    assert {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "PrometheusRule"),
            ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "Prometheus"),
            ("monitoring.coreos.com/v1", "Alertmanager"), ("karpenter.sh/v1", "NodePool"), ("karpenter.k8s.aws/v1", "EC2NodeClass")} <= custom
    assert custom <= served


def _schemas(result) -> Schemas:
    crds = [o for release in result.releases.values() for o in release.objects if (o["apiVersion"], o["kind"]) == CRD_KIND]
    return Schemas(result.cfg.cluster.kubernetes_version, crds)


def _set(obj: dict, path: tuple, value) -> dict:
    broken = copy.deepcopy(obj)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return broken


BREAKAGES = {
    "unknown-container-field": (("airflow", "Deployment", "airflow-worker"), ("spec", "template", "spec", "containers", 0, "grace"), 1,
                                "Deployment airflow-worker: spec.template.spec.containers.0: Additional properties are not allowed "
                                "('grace' was unexpected)"),
    "string-replicas": (("airflow", "Deployment", "airflow-scheduler"), ("spec", "replicas"), "2",
                        "Deployment airflow-scheduler: spec.replicas: '2' is not of type 'integer', 'null'"),
    "unknown-scaledobject-field": (("airflow", "ScaledObject", "airflow-worker"), ("spec", "maxReplicas"), 20,
                                   "ScaledObject airflow-worker: spec: Additional properties are not allowed ('maxReplicas' was unexpected)"),
    "string-scaledobject-bound": (("airflow", "ScaledObject", "airflow-worker"), ("spec", "maxReplicaCount"), "20",
                                  "ScaledObject airflow-worker: spec.maxReplicaCount: '20' is not of type 'integer'"),
    "scaledobject-minimum-above-maximum": (("airflow", "ScaledObject", "airflow-worker"), ("spec", "minReplicaCount"), 30,
                                           "ScaledObject airflow-worker: spec: minReplicaCount must be less than or equal to maxReplicaCount"),
    "unknown-servicemonitor-field": (("otel-collector", "ServiceMonitor", "otel-collector"), ("spec", "endpoints", 0, "every"), "30s",
                                     "ServiceMonitor monitoring/otel-collector: spec.endpoints.0: Additional properties are not allowed "
                                     "('every' was unexpected)"),
    "unknown-metadata-field": (("keda", "Deployment", "keda-operator"), ("metadata", "owner"), "platform",
                               "Deployment keda/keda-operator: metadata: Additional properties are not allowed ('owner' was unexpected)"),
}


@pytest.mark.parametrize("where, path, value, error", BREAKAGES.values(), ids=BREAKAGES.keys())
def test_validation_refuses_what_the_api_server_refuses(rendering, where, path, value, error):
    """A rendered object broken in one place is refused in one line naming the object, the field and the reason (a CRD's
    CEL rule with its own message)."""
    prod = rendering("prod")
    release, kind, name = where
    schemas = _schemas(prod)
    obj = prod.releases[release].named(kind, name)
    assert schemas.errors(obj) == []
    assert schemas.errors(_set(obj, path, value)) == [error]


def test_program_objects_are_validated_too(rendering):
    """The PrometheusRule the program declares is checked against the operator's CRD: a malformed duration is refused."""
    prod = rendering("prod")
    [rule] = [r.inputs for r in prod.plan.resources if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    broken = _set(rule, ("spec", "groups", 0, "rules", 0, "for"), "5 minutes")
    assert _schemas(prod).errors(broken) == [
        "PrometheusRule monitoring/airflow-platform: spec.groups.0.rules.0.for: '5 minutes' does not match "
        "'^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'"]


def test_a_kind_no_schema_knows_is_refused(rendering):
    """An object of an API neither Kubernetes nor the platform's CRDs define would fail to install, so it is an error."""
    assert _schemas(rendering("dev")).errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}) == [
        "Widget w: no schema for example.com/v1 Widget in Kubernetes 1.33 or the CRDs the platform installs"]
