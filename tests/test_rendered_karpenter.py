"""Tests Karpenter as its charts render the program's values: the controller's placement, budget, identity and settings,
the CRDs of the CRD chart, and the NodePools and EC2NodeClasses checked against those CRDs (their CEL rules included)."""

from __future__ import annotations

import copy

import pytest

from components.names import POOL_LABEL
from tests.rendered import container, env, pod, selects
from tools.kube_schema import Schemas
from tools.render import CRD_KIND


def controller(result) -> dict:
    return result.releases["karpenter"].named("Deployment", "karpenter")


def test_crd_chart_ships_the_crds(rendering):
    """The CRD chart carries the NodePool, NodeClaim and EC2NodeClass CRDs the controller and the program's objects need."""
    objects = rendering("prod").releases["karpenter-crd"].objects
    assert {o["metadata"]["name"] for o in objects if (o["apiVersion"], o["kind"]) == CRD_KIND} >= {
        "nodepools.karpenter.sh", "nodeclaims.karpenter.sh", "ec2nodeclasses.karpenter.k8s.aws"}
    assert not [o for o in rendering("prod").releases["karpenter"].objects if (o["apiVersion"], o["kind"]) == CRD_KIND]


def test_controller_runs_twice_on_the_system_nodes_never_on_its_own(rendering):
    """Two replicas on system nodes, required off any node a NodePool made, one per host, spread over the zones."""
    deployment = controller(rendering("prod"))
    spec = pod(deployment)["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux", POOL_LABEL: "system"}
    [term] = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == {"matchExpressions": [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]}
    [apart] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    [spread] = spec["topologySpreadConstraints"]
    labels = pod(deployment)["metadata"]["labels"]
    assert apart["topologyKey"] == "kubernetes.io/hostname" and selects(apart["labelSelector"], labels)
    assert (spread["topologyKey"], spread["whenUnsatisfiable"], spread["maxSkew"]) == ("topology.kubernetes.io/zone", "DoNotSchedule", 1)
    assert selects(spread["labelSelector"], labels)


def test_budget_lets_one_controller_go_at_a_time(rendering):
    """The PDB allows one voluntary eviction and selects the controller's pods."""
    result = rendering("prod")
    [budget] = [o for o in result.releases["karpenter"].objects if o["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert selects(budget["spec"]["selector"], pod(controller(result))["metadata"]["labels"])


def test_controller_identity_and_settings(rendering):
    """The service account carries the controller role; the controller knows its cluster and its interruption queue."""
    result = rendering("prod")
    [account] = [o for o in result.releases["karpenter"].objects if o["kind"] == "ServiceAccount"]
    role = result.plan.named("airflow-prod-karpenter-controller-role").outputs["arn"]
    assert (account["metadata"]["name"], account["metadata"]["annotations"]) == ("karpenter", {"eks.amazonaws.com/role-arn": role})
    main = container(controller(result), "controller")
    assert (env(main, "CLUSTER_NAME"), env(main, "INTERRUPTION_QUEUE")) == ("airflow-prod", "airflow-prod-karpenter")
    assert main["resources"] == {"requests": {"cpu": "500m", "memory": "1024Mi"}, "limits": {"memory": "1024Mi"}}


def test_metrics_are_scraped_by_the_stacks_prometheus(rendering):
    """The chart's ServiceMonitor carries the label the stack's Prometheus selects, and scrapes the controller's Service."""
    objects = rendering("prod").releases["karpenter"].objects
    [monitor] = [o for o in objects if o["kind"] == "ServiceMonitor"]
    [service] = [o for o in objects if o["kind"] == "Service"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert selects(monitor["spec"]["selector"], service["metadata"]["labels"])


@pytest.fixture(scope="module")
def karpenter_schemas(rendering) -> Schemas:
    result = rendering("prod")
    crds = [o for o in result.releases["karpenter-crd"].objects if (o["apiVersion"], o["kind"]) == CRD_KIND]
    return Schemas(result.cfg.cluster.kubernetes_version, crds)


def declared(rendering, kind: str, name: str) -> dict:
    [found] = [o for o in rendering("prod").declared(kind) if o["metadata"]["name"] == name]
    return copy.deepcopy(found)


@pytest.mark.parametrize("kind, name", [("NodePool", "workers"), ("NodePool", "tasks"), ("EC2NodeClass", "workers"), ("EC2NodeClass", "tasks")])
def test_program_objects_satisfy_the_crds(rendering, karpenter_schemas, kind, name):
    """Each NodePool and EC2NodeClass passes its CRD's schema and CEL rules."""
    assert karpenter_schemas.errors(declared(rendering, kind, name)) == []


def _restricted_label(obj: dict) -> None:
    obj["spec"]["template"]["metadata"]["labels"]["karpenter.sh/custom"] = "x"


def _bad_budget(obj: dict) -> None:
    obj["spec"]["disruption"]["budgets"][0]["nodes"] = "ten"


def _latest_with_version(obj: dict) -> None:
    obj["spec"]["amiSelectorTerms"] = [{"alias": "ubuntu@v1"}]


def _open_hops(obj: dict) -> None:
    obj["spec"]["metadataOptions"]["httpPutResponseHopLimit"] = 100


@pytest.mark.parametrize("kind, name, breaks, message", [
    ("NodePool", "workers", _restricted_label, "label domain \"karpenter.sh\" is restricted"),
    ("NodePool", "tasks", _bad_budget, "disruption.budgets.0.nodes"),
    ("EC2NodeClass", "workers", _latest_with_version, "family is not supported"),
    ("EC2NodeClass", "tasks", _open_hops, "httpPutResponseHopLimit"),
], ids=["restricted-label", "budget-not-a-count", "unknown-ami-family", "hop-limit-out-of-range"])
def test_the_crds_refuse_a_broken_object(rendering, karpenter_schemas, kind, name, breaks, message):
    """The check bites: an object Karpenter's API would refuse is refused here too, by schema or CEL rule."""
    obj = declared(rendering, kind, name)
    breaks(obj)
    errors = karpenter_schemas.errors(obj)
    assert any(message in error for error in errors), errors
