"""Tests where every Helm Release installs its chart from: the pinned version, from the official repository or the
stack's mirror (a Helm repository, or an OCI registry path)."""

from __future__ import annotations

import pytest
import yaml

from components.airflow_values import Wiring, airflow_values
from components.autoscaling import keda_values
from components.charts import CHARTS, release_source
from components.observability_values import kps_values, otel_removals, otel_values
from tests.conftest import VARIANTS, typed_config, variant_config
from tools.render import release_values

RELEASE = "kubernetes:helm.sh/v3:Release"
MIRROR = "https://artifactory.example.com/artifactory/api/helm/helm-remote"
REGISTRY = "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/helm-charts"


def sources(plan) -> dict[str, tuple]:
    """chart name -> (chart reference, version, Helm repository) of every Release in the plan."""
    return {r.inputs["chart"].rsplit("/", 1)[-1]: (r.inputs["chart"], r.inputs["version"], (r.inputs.get("repositoryOpts") or {}).get("repo"))
            for r in plan.of_type(RELEASE)}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_official_repositories_by_default(stack, request):
    """Without chartRepositories, every chart comes at its pinned version from the repository that publishes it."""
    plan = request.getfixturevalue(f"{stack}_plan")
    assert sources(plan) == {
        "karpenter-crd": ("oci://public.ecr.aws/karpenter/karpenter-crd", "1.14.1", None),
        "karpenter": ("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", None),
        "aws-load-balancer-controller": ("aws-load-balancer-controller", "3.5.0", "https://aws.github.io/eks-charts"),
        "keda": ("keda", "2.20.2", "https://kedacore.github.io/charts"),
        "kube-prometheus-stack": ("kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts"),
        "opentelemetry-collector": ("opentelemetry-collector", "0.170.0", "https://open-telemetry.github.io/opentelemetry-helm-charts"),
        "airflow": ("airflow", "1.19.0", "https://airflow.apache.org"),
    }


def test_mirrors_replace_the_official_repositories(plan_with):
    """A Helm-repository mirror is passed as the repository; an OCI registry path becomes the chart reference itself."""
    plan = plan_with("prod", {"airflow-platform:chartRepositories": {
        "airflow": MIRROR, "keda": MIRROR, "kube-prometheus-stack": REGISTRY, "opentelemetry-collector": REGISTRY,
        "karpenter-crd": REGISTRY, "karpenter": REGISTRY, "aws-load-balancer-controller": MIRROR}})
    assert sources(plan) == {
        "karpenter-crd": (f"{REGISTRY}/karpenter-crd", "1.14.1", None),
        "karpenter": (f"{REGISTRY}/karpenter", "1.14.1", None),
        "aws-load-balancer-controller": ("aws-load-balancer-controller", "3.5.0", MIRROR),
        "keda": ("keda", "2.20.2", MIRROR),
        "kube-prometheus-stack": (f"{REGISTRY}/kube-prometheus-stack", "88.5.3", None),
        "opentelemetry-collector": (f"{REGISTRY}/opentelemetry-collector", "0.170.0", None),
        "airflow": ("airflow", "1.19.0", MIRROR),
    }


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_release_source_shapes(name):
    """release_source gives a helm.v3.Release exactly the arguments of each form, and nothing else."""
    chart = CHARTS[name]
    assert release_source(chart, MIRROR) == {"chart": name, "version": chart.version, "repository_opts": {"repo": MIRROR}}
    assert release_source(chart, REGISTRY) == {"chart": f"{REGISTRY}/{name}", "version": chart.version}


def _nulls(value, path: str = "values") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _nulls(item, f"{path}[{index}]")]
    return []


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_value_is_null(variant):
    """No Release's `values` holds a None: Pulumi's Python SDK drops it before the engine, so a chart default it was meant
    to delete would silently stay (deletions go in a values file, as the collector's do)."""
    cfg = typed_config(variant_config(variant)[1])
    wiring = Wiring(region="eu-west-1", dag_bucket="bucket", dag_reader_role_arn="arn:aws:iam::123456789012:role/reader",
                    dags_claim="airflow-dags" if cfg.airflow.dag_delivery == "efs" else None)
    built = {"keda": keda_values(), "kube-prometheus-stack": kps_values(cfg, "gp3-encrypted"), "otel-collector": otel_values(cfg),
             "airflow": airflow_values(cfg, wiring)}
    assert {name: _nulls(values) for name, values in built.items()} == dict.fromkeys(built, [])


def test_collector_removals_reach_helm_as_a_values_file(prod_plan):
    """The collector's deletions travel as a values file whose nulls survive to Helm, before `values` is merged over it."""
    [collector] = [r for r in prod_plan.of_type(RELEASE) if r.inputs["name"] == "otel-collector"]
    [asset] = collector.inputs["valueYamlFiles"]
    assert yaml.safe_load(asset.text) == otel_removals()
    merged = release_values(collector.inputs)
    assert merged["config"]["receivers"] == {"otlp": {"protocols": {"grpc": None, "http": {"endpoint": "${env:MY_POD_IP}:4318"}}},
                                             "jaeger": None, "zipkin": None, "prometheus": None}
