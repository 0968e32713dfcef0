"""Tests the AWS Load Balancer Controller as the plan declares it and its chart renders it: its IRSA role and policy, the
subnets it may place internal load balancers in, and a controller that defaults to internal, TLS 1.3 load balancers,
runs twice on the system nodes and is scraped by the stack's Prometheus."""

from __future__ import annotations

import json

from components.lb_controller import TLS_POLICY
from tests.rendered import container, pod, selects

RELEASE = "aws-load-balancer-controller"


def release_inputs(plan) -> dict:
    [found] = [r.inputs for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == RELEASE]
    return found


def test_role_is_the_controllers_service_account_only(prod_plan):
    """The role trusts exactly kube-system's aws-load-balancer-controller account through the cluster's OIDC provider."""
    trust = json.loads(prod_plan.named("airflow-prod-lb-controller-role").inputs["assumeRolePolicy"])
    [statement] = trust["Statement"]
    subjects = [v for test in statement["Condition"].values() for key, v in test.items() if key.endswith(":sub")]
    assert subjects == ["system:serviceaccount:kube-system:aws-load-balancer-controller"]


def test_policy_is_the_narrowed_documented_one(prod_plan):
    """The role's one inline policy has the document's sixteen statements, and no write on every resource."""
    document = json.loads(prod_plan.named("airflow-prod-lb-controller-policy").inputs["policy"])
    assert len(document["Statement"]) == 16
    on_any = sorted(s["Sid"] for s in document["Statement"] if s["Resource"] == "*")
    assert on_any == ["DescribeEc2AndElb", "ReadCertificatesAndCognito"]


def test_entry_subnets_are_tagged_for_internal_load_balancers(prod_plan):
    """Every entry subnet, and nothing else, carries kubernetes.io/role/internal-elb: a load balancer the controller makes
    keeps out of the pods' subnets too."""
    tags = [t.inputs for t in prod_plan.of_type("aws:ec2/tag:Tag") if t.inputs["key"] == "kubernetes.io/role/internal-elb"]
    assert sorted(t["resourceId"] for t in tags) == sorted(prod_plan.outputs["entrySubnetIds"]) and {t["value"] for t in tags} == {"1"}


def test_release_values(prod_plan):
    """The controller knows its cluster and VPC, uses the role, defaults to internal TLS 1.3 load balancers, has WAF and
    Shield off, runs twice with a budget, and is installed after the stack's Prometheus operator (its ServiceMonitor)."""
    inputs = release_inputs(prod_plan)
    values = inputs["values"]
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == ("aws-load-balancer-controller", "3.5.0", "kube-system")
    assert (values["clusterName"], values["region"], values["vpcId"]) == ("airflow-prod", "eu-west-1", prod_plan.outputs["vpcId"])
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": prod_plan.named("airflow-prod-lb-controller-role").outputs["arn"]}
    assert (values["defaultLoadBalancerScheme"], values["defaultSSLPolicy"]) == ("internal", "ELBSecurityPolicy-TLS13-1-2-2021-06")
    assert (values["enableShield"], values["enableWaf"], values["enableWafv2"]) == (False, False, False)
    assert (values["replicaCount"], values["podDisruptionBudget"]) == (2, {"maxUnavailable": 1})
    controller = prod_plan.named("airflow-prod-lb-controller-release")
    assert prod_plan.named("airflow-prod-observability-kube-prometheus-stack").urn in controller.dependencies


def rendered_controller(rendering) -> dict:
    return rendering("prod").releases[RELEASE].named("Deployment", RELEASE)


def test_controller_runs_twice_on_the_system_nodes(rendering):
    """Two replicas on the system nodes, kept apart by host and spread over zones, with a budget of one."""
    deployment = rendered_controller(rendering)
    spec, labels = pod(deployment)["spec"], pod(deployment)["metadata"]["labels"]
    assert (deployment["spec"]["replicas"], spec["nodeSelector"]) == (2, {"airflow-platform/pool": "system"})
    [apart] = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert apart["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    [spread] = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and selects(spread["labelSelector"], labels)
    [budget] = [o for o in rendering("prod").releases[RELEASE].objects if o["kind"] == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1 and selects(budget["spec"]["selector"], labels)


def test_controller_arguments(rendering):
    """The flags the controller runs with carry the cluster, the internal scheme, the TLS policy and no WAF or Shield."""
    args = container(rendered_controller(rendering), "aws-load-balancer-controller")["args"]
    assert {"--cluster-name=airflow-prod", "--default-load-balancer-scheme=internal", f"--default-ssl-policy={TLS_POLICY}",
            "--enable-shield=false", "--enable-waf=false", "--enable-wafv2=false"} <= set(args)


def test_metrics_are_scraped_by_the_stacks_prometheus(rendering):
    """The chart's ServiceMonitor carries the label the stack's Prometheus selects."""
    [monitor] = [o for o in rendering("prod").releases[RELEASE].objects if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
