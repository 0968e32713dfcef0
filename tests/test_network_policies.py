"""Tests the NetworkPolicies component and the VPC CNI's enforcement of it: a default-deny in every platform namespace,
and the declared policies evaluated (tools/network_policy.py) over the pods the charts render for dev and prod, so the
connections the platform makes are admitted and every other one tried here is refused."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import itertools
import json
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest
import yaml

from components import network_policies as policies
from components.cluster import VPC_CNI_CONFIGURATION
from components.network import subnet_layout
from components.team_roles import job_name
from tests.conftest import Rendering, stack_config
from tests.rendered import pod as pod_template
from tests.test_sso import without_sso
from tools import network_policy as netpol
from tools import plan as plan_cli
from tools.kube_schema import Schemas
from tools.network_policy import Address, Cluster, ContainerPort, Pod
from tools.offline import Plan, run_stack_config

POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
COMPONENT = "airflow-platform:index:NetworkPolicies"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
PLATFORM_NAMESPACES = ["airflow", "airflow-tasks", "monitoring", "keda", "karpenter"]
DEFAULT_DENY_SPEC = {"podSelector": {}, "policyTypes": ["Ingress"]}

# Pods the renders do not show, as what makes them makes them:
# - Prometheus's and Alertmanager's, which the Prometheus operator creates: with the labels of the chart's Services that
#   select them (read from the render below) and the operator's container ports (web, reloader-web; Alertmanager's mesh).
# - Grafana's and kube-state-metrics', subcharts ../shared lacks (the render leaves them out and says so): their selector
#   labels and container ports as grafana 12.11.1 (tree 5324b79d…) and kube-state-metrics 8.4.0 (tree cf805c82…), the
#   trees SOURCES.md names, render them for the release kube-prometheus-stack. A render that has them uses its own.
# - A KubernetesPodOperator task pod, with whatever labels and ports a team's DAG gives it.
OPERATOR_PODS = {
    "prometheus-kube-prometheus-stack-prometheus": ("kube-prometheus-stack-prometheus", "Prometheus", (
        ContainerPort(9090, "web"), ContainerPort(8080, "reloader-web"))),
    "alertmanager-kube-prometheus-stack-alertmanager": ("kube-prometheus-stack-alertmanager", "Alertmanager", (
        ContainerPort(9093, "web"), ContainerPort(9094, "mesh-tcp"), ContainerPort(9094, "mesh-udp", "UDP"),
        ContainerPort(8080, "reloader-web"))),
}
SUBCHART_PODS = {
    "grafana 12.11.1": ("kube-prometheus-stack-grafana", {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "kube-prometheus-stack"},
                        (ContainerPort(3000, "grafana"), ContainerPort(9094, "gossip-tcp"), ContainerPort(9094, "gossip-udp", "UDP"),
                         ContainerPort(6060, "profiling"))),
    "kube-state-metrics 8.4.0": ("kube-prometheus-stack-kube-state-metrics",
                                 {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": "kube-prometheus-stack"},
                                 (ContainerPort(8080, "http"), ContainerPort(8081, "metrics"))),
}
TASK_POD = Pod("airflow-tasks", "task", {"dag_id": "payments_daily", "task_id": "transform", "kubernetes_pod_operator": "True"},
               "", (ContainerPort(8080, "http"),))


@dataclass
class World:
    """One variant's cluster: its policies and namespaces, its pods by <namespace>/<workload>, and the other sources."""

    cluster: Cluster
    pods: dict[str, Pod]
    addresses: dict[str, Address]

    def source(self, key: str) -> Pod | Address:
        return self.pods[key] if "/" in key else self.addresses[key]

    def admits(self, source: str, destination: str, port: int, protocol: str = "TCP") -> bool:
        return self.cluster.admits(self.source(source), self.pods[destination], port, protocol)


def _layout(result: Rendering):
    return subnet_layout(result.cfg.network.vpc_cidr, result.cfg.zones)


def _workload_pods(result: Rendering) -> list[tuple[str, str, dict]]:
    """(namespace, workload name, pod template) of every workload the charts render and the program declares."""
    found = [(o["metadata"].get("namespace", release.namespace), o["metadata"]["name"], pod_template(o))
             for release in result.releases.values() for o in release.objects if o["kind"] in WORKLOADS]
    found += [(o["metadata"]["namespace"], o["metadata"]["name"], pod_template(o))
              for kind in WORKLOADS for o in result.declared(kind)]
    # A KubernetesExecutor task pod, made from the pod template the chart writes into airflow.cfg's ConfigMap.
    if "KubernetesExecutor" in result.cfg.airflow.executor:
        data = result.releases["airflow"].named("ConfigMap", "airflow-config")["data"]
        found.append(("airflow", "kubernetes-executor-task", yaml.safe_load(data["pod_template_file.yaml"])))
    return found


def _stand_ins(result: Rendering) -> list[tuple[str, str, dict[str, str], tuple[ContainerPort, ...]]]:
    stack = result.releases["kube-prometheus-stack"]
    found = []
    for name, (service, kind, ports) in OPERATOR_PODS.items():
        selector = stack.named("Service", service)["spec"]["selector"]
        extra = ((stack.named(kind, service)["spec"].get("podMetadata") or {}).get("labels") or {})
        found.append(("monitoring", name, {**selector, **extra}, ports))
    found += [("monitoring", name, labels, ports) for chart, (name, labels, ports) in SUBCHART_PODS.items() if chart in stack.omitted]
    return found + [(TASK_POD.namespace, TASK_POD.name, dict(TASK_POD.labels), TASK_POD.ports)]


def build_world(result: Rendering) -> World:
    """Every pod with an address of the first private subnet (the VPC CNI gives pods their node subnet's addresses)."""
    layout = _layout(result)
    hosts = itertools.islice(ipaddress.ip_network(layout[0].private).hosts(), 9, None)
    teams_job = job_name([team.name for team in result.cfg.teams])
    pods = {}
    for namespace, name, template in _workload_pods(result):
        key = "airflow-team-roles" if name == teams_job else name
        pods[f"{namespace}/{key}"] = Pod(namespace, key, (template.get("metadata") or {}).get("labels") or {}, str(next(hosts)),
                                          netpol.container_ports(template["spec"]), bool(template["spec"].get("hostNetwork")))
    for namespace, name, labels, ports in _stand_ins(result):
        pods[f"{namespace}/{name}"] = Pod(namespace, name, labels, str(next(hosts)), ports)
    namespaces = {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in result.declared("Namespace")}
    # Sources that are no pod: the entry's load balancer and the EKS control plane (their interfaces in their own
    # subnets), a VPN client going around the load balancer, a NAT gateway in a public subnet, and the internet.
    addresses = {
        "load-balancer": Address(str(ipaddress.ip_network(layout[-1].entry)[20])),
        "control-plane": Address(str(ipaddress.ip_network(layout[1].control_plane)[21])),
        "vpn-client": Address("10.8.3.4"),
        "nat-gateway": Address(str(ipaddress.ip_network(layout[0].public)[5])),
        "internet": Address("198.51.100.7"),
    }
    return World(Cluster(result.declared("NetworkPolicy"), namespaces), pods, addresses)


@pytest.fixture(scope="session")
def world(rendering) -> Callable[[str], World]:
    cache: dict[str, World] = {}

    def get(variant: str) -> World:
        if variant not in cache:
            cache[variant] = build_world(rendering(variant))
        return cache[variant]

    return get


API, SCHEDULER, WORKER, TRIGGERER, DAG_PROCESSOR, PGBOUNCER, REDIS, EXPORTER, TEAM_ROLES = (f"airflow/airflow-{c}" for c in (
    "api-server", "scheduler", "worker", "triggerer", "dag-processor", "pgbouncer", "redis", "task-metrics", "team-roles"))
COLLECTOR, PROMETHEUS, ALERTMANAGER = ("monitoring/otel-collector", "monitoring/prometheus-kube-prometheus-stack-prometheus",
                                       "monitoring/alertmanager-kube-prometheus-stack-alertmanager")
GRAFANA, KSM, OPERATOR = ("monitoring/kube-prometheus-stack-grafana", "monitoring/kube-prometheus-stack-kube-state-metrics",
                          "monitoring/kube-prometheus-stack-operator")
METRICS_API, KEDA_OPERATOR, KEDA_WEBHOOKS = "keda/keda-operator-metrics-apiserver", "keda/keda-operator", "keda/keda-admission-webhooks"
KARPENTER, LB_CONTROLLER, TASK = "karpenter/karpenter", "kube-system/aws-load-balancer-controller", "airflow-tasks/task"

# (source, destination, port[, protocol]): what the platform needs.
ADMITTED = {
    "load-balancer-to-api-server": ("load-balancer", API, 8080),
    "load-balancer-to-grafana": ("load-balancer", GRAFANA, 3000),
    "worker-to-api-server-execution-api": (WORKER, API, 8080),
    "api-server-to-worker-log-server": (API, WORKER, 8793),
    "api-server-to-triggerer-log-server": (API, TRIGGERER, 8794),
    **{f"{name}-to-collector-otlp": (source, COLLECTOR, 4318) for name, source in (
        ("scheduler", SCHEDULER), ("api-server", API), ("worker", WORKER), ("triggerer", TRIGGERER), ("dag-processor", DAG_PROCESSOR),
        ("task-metrics-exporter", EXPORTER))},
    "prometheus-to-collector-exporter": (PROMETHEUS, COLLECTOR, 8889),
    "prometheus-to-itself": (PROMETHEUS, PROMETHEUS, 9090),
    "prometheus-to-its-config-reloader": (PROMETHEUS, PROMETHEUS, 8080),
    "grafana-to-prometheus": (GRAFANA, PROMETHEUS, 9090),
    "prometheus-to-alertmanager": (PROMETHEUS, ALERTMANAGER, 9093),
    "prometheus-to-alertmanager-config-reloader": (PROMETHEUS, ALERTMANAGER, 8080),
    "grafana-to-alertmanager": (GRAFANA, ALERTMANAGER, 9093),
    "alertmanager-gossip-tcp": (ALERTMANAGER, ALERTMANAGER, 9094),
    "alertmanager-gossip-udp": (ALERTMANAGER, ALERTMANAGER, 9094, "UDP"),
    "prometheus-to-grafana": (PROMETHEUS, GRAFANA, 3000),
    "prometheus-to-kube-state-metrics": (PROMETHEUS, KSM, 8080),
    "prometheus-to-prometheus-operator": (PROMETHEUS, OPERATOR, 10250),
    "control-plane-to-prometheus-operator-webhook": ("control-plane", OPERATOR, 10250),
    "prometheus-to-karpenter": (PROMETHEUS, KARPENTER, 8080),
    "prometheus-to-lb-controller": (PROMETHEUS, LB_CONTROLLER, 8080),
    "control-plane-to-lb-controller-webhook": ("control-plane", LB_CONTROLLER, 9443),
    "control-plane-to-keda-metrics-api": ("control-plane", METRICS_API, 6443),
    "keda-metrics-api-to-keda-operator": (METRICS_API, KEDA_OPERATOR, 9666),
    "control-plane-to-keda-webhooks": ("control-plane", KEDA_WEBHOOKS, 9443),
}
PROD_ADMITTED = {f"{name}-to-pgbouncer": (source, PGBOUNCER, 6543) for name, source in (
    ("scheduler", SCHEDULER), ("api-server", API), ("worker", WORKER), ("triggerer", TRIGGERER), ("dag-processor", DAG_PROCESSOR),
    ("migrations", "airflow/airflow-run-airflow-migrations"), ("create-user", "airflow/airflow-create-user"),
    ("database-cleanup", "airflow/airflow-database-cleanup"), ("task-metrics-exporter", EXPORTER), ("team-roles", TEAM_ROLES))}
DEV_ADMITTED = {"worker-to-redis": (WORKER, REDIS, 6379), "scheduler-to-redis": (SCHEDULER, REDIS, 6379)}

# What nothing in the platform needs.
REFUSED = {
    "internet-to-api-server": ("internet", API, 8080),
    "vpn-client-to-api-server-around-the-load-balancer": ("vpn-client", API, 8080),
    "nat-gateway-subnet-to-api-server": ("nat-gateway", API, 8080),
    "load-balancer-to-api-server-on-another-port": ("load-balancer", API, 8793),
    "load-balancer-to-scheduler": ("load-balancer", SCHEDULER, 8974),
    "internet-to-scheduler": ("internet", SCHEDULER, 8974),
    "nat-gateway-subnet-to-scheduler": ("nat-gateway", SCHEDULER, 8974),
    "worker-to-scheduler": (WORKER, SCHEDULER, 8974),
    "load-balancer-to-worker-log-server": ("load-balancer", WORKER, 8793),
    "worker-to-worker-log-server": (WORKER, WORKER, 8793),
    "scheduler-to-worker-log-server": (SCHEDULER, WORKER, 8793),
    "task-pod-to-worker-log-server": (TASK, WORKER, 8793),
    "prometheus-to-dags-sync-status": (PROMETHEUS, WORKER, 8087),
    "internet-to-grafana": ("internet", GRAFANA, 3000),
    "vpn-client-to-grafana-around-the-load-balancer": ("vpn-client", GRAFANA, 3000),
    "worker-to-grafana-profiling": (WORKER, GRAFANA, 6060),
    "worker-to-task-pod": (WORKER, TASK, 8080),
    "load-balancer-to-task-pod": ("load-balancer", TASK, 8080),
    "control-plane-to-task-pod": ("control-plane", TASK, 8080),
    "prometheus-to-task-pod": (PROMETHEUS, TASK, 8080),
    "task-pod-to-task-pod": (TASK, TASK, 8080),
    "task-pod-to-collector-otlp": (TASK, COLLECTOR, 4318),
    "keda-operator-to-collector-otlp": (KEDA_OPERATOR, COLLECTOR, 4318),
    "worker-to-collector-exporter": (WORKER, COLLECTOR, 8889),
    "worker-to-prometheus": (WORKER, PROMETHEUS, 9090),
    "task-pod-to-prometheus": (TASK, PROMETHEUS, 9090),
    "collector-to-alertmanager": (COLLECTOR, ALERTMANAGER, 9093),
    "grafana-to-alertmanager-gossip": (GRAFANA, ALERTMANAGER, 9094),
    "worker-to-kube-state-metrics": (WORKER, KSM, 8080),
    "worker-to-karpenter": (WORKER, KARPENTER, 8080),
    "task-pod-to-lb-controller-metrics": (TASK, LB_CONTROLLER, 8080),
    "worker-to-keda-operator": (WORKER, KEDA_OPERATOR, 9666),
    "control-plane-to-keda-operator": ("control-plane", KEDA_OPERATOR, 9666),
    "prometheus-to-keda-metrics": (PROMETHEUS, METRICS_API, 8080),
    # The ports open to the load balancer's and the control plane's ranges refuse the pods, whose addresses are in the
    # private subnets: a pod cannot pass for either.
    "worker-to-grafana": (WORKER, GRAFANA, 3000),
    "task-pod-to-grafana": (TASK, GRAFANA, 3000),
    "task-pod-to-api-server": (TASK, API, 8080),
    "scheduler-to-api-server": (SCHEDULER, API, 8080),
    "task-pod-to-keda-metrics-api": (TASK, METRICS_API, 6443),
    "task-pod-to-keda-webhooks": (TASK, KEDA_WEBHOOKS, 9443),
    "task-pod-to-lb-controller-webhook": (TASK, LB_CONTROLLER, 9443),
    "task-pod-to-prometheus-operator-webhook": (TASK, OPERATOR, 10250),
    "load-balancer-to-keda-metrics-api": ("load-balancer", METRICS_API, 6443),
    "control-plane-to-grafana": ("control-plane", GRAFANA, 3000),
}
PROD_REFUSED = {
    "task-pod-to-pgbouncer": (TASK, PGBOUNCER, 6543),
    "collector-to-pgbouncer": (COLLECTOR, PGBOUNCER, 6543),
    "keda-operator-to-pgbouncer": (KEDA_OPERATOR, PGBOUNCER, 6543),
    "load-balancer-to-pgbouncer": ("load-balancer", PGBOUNCER, 6543),
    "prometheus-to-pgbouncer-exporter": (PROMETHEUS, PGBOUNCER, 9127),
}
DEV_REFUSED = {f"{name}-to-redis": (source, REDIS, 6379) for name, source in (
    ("task-pod", TASK), ("api-server", API), ("triggerer", TRIGGERER), ("dag-processor", DAG_PROCESSOR), ("task-metrics-exporter", EXPORTER),
    ("team-roles", TEAM_ROLES), ("collector", COLLECTOR), ("prometheus", PROMETHEUS), ("keda-operator", KEDA_OPERATOR),
    ("load-balancer", "load-balancer"), ("control-plane", "control-plane"))}

def flows(common: dict, per_variant: dict[str, dict]) -> list:
    """One case per variant and flow, as (variant, (source, destination, port, protocol))."""
    return [pytest.param(variant, (source, destination, port, protocol[0] if protocol else "TCP"), id=f"{variant}-{name}")
            for variant, extra in per_variant.items() for name, (source, destination, port, *protocol) in {**common, **extra}.items()]


@pytest.mark.parametrize("variant, flow", flows(ADMITTED, {"dev": DEV_ADMITTED, "prod": PROD_ADMITTED}))
def test_the_platforms_connections_are_admitted(world, variant, flow):
    """Each connection the platform makes reaches its pod's port."""
    assert world(variant).admits(*flow)


@pytest.mark.parametrize("variant, flow", flows(REFUSED, {"dev": DEV_REFUSED, "prod": PROD_REFUSED}))
def test_other_connections_are_refused(world, variant, flow):
    """A connection nothing in the platform needs is refused."""
    assert not world(variant).admits(*flow)


def _services(result: Rendering) -> dict[tuple[str, str], dict]:
    return {(o["metadata"].get("namespace", release.namespace), o["metadata"]["name"]): o
            for release in result.releases.values() for o in release.objects if o["kind"] == "Service"}


def _targets(here: World, namespace: str, service: dict, port: dict) -> list[tuple[str, int, str]]:
    """(pod, container port, protocol) for each pod a Service port leads to."""
    selector = service["spec"].get("selector")
    target = port.get("targetPort", port["port"])
    protocol = port.get("protocol", "TCP")
    found = []
    for key, pod in sorted(here.pods.items()):
        if selector and pod.namespace == namespace and netpol.selects({"matchLabels": selector}, pod.labels):
            number = target if isinstance(target, int) else pod.port_named(target, protocol)
            found.append((key, number, protocol))
    return found


def _references(result: Rendering) -> Iterator[tuple[dict, str, dict, dict]]:
    """(object, namespace, Service, Service port) for each Service port a rendered ServiceMonitor endpoint, webhook or
    APIService names."""
    services = _services(result)
    for release in result.releases.values():
        for obj in release.objects:
            if obj["kind"] == "ServiceMonitor":
                own = obj["metadata"].get("namespace", release.namespace)
                names = (obj["spec"].get("namespaceSelector") or {}).get("matchNames") or [own]
                wanted = [((namespace, name), lambda p, e=endpoint["port"]: p.get("name") == e)
                          for (namespace, name), service in sorted(services.items()) for endpoint in obj["spec"]["endpoints"]
                          if namespace in names and netpol.selects(obj["spec"]["selector"], service["metadata"].get("labels") or {})]
            else:
                references = ([w["clientConfig"].get("service") for w in obj.get("webhooks", [])] if "Webhook" in obj["kind"]
                              else [obj["spec"].get("service")] if obj["kind"] == "APIService" else [])
                wanted = [((r["namespace"], r["name"]), lambda p, n=r.get("port", 443): p["port"] == n) for r in filter(None, references)]
            for (namespace, name), named in wanted:
                [port] = [p for p in services[(namespace, name)]["spec"]["ports"] if named(p)]
                yield obj, namespace, services[(namespace, name)], port


def _reached(kinds: set[str]) -> Callable[[Rendering, World], list[tuple[str, str, str, int, str]]]:
    """(kind, name, pod, container port, protocol) for every rendered pod the objects of `kinds` lead their caller to."""
    def reached(result: Rendering, here: World) -> list[tuple[str, str, str, int, str]]:
        return sorted({(obj["kind"], obj["metadata"]["name"], *target) for obj, namespace, service, port in _references(result)
                       if obj["kind"] in kinds for target in _targets(here, namespace, service, port)})
    return reached


# Every pod port the rendered ServiceMonitors scrape (CoreDNS's pods are EKS's, the API server's and the kubelets' no pods)
# and every one a rendered webhook or aggregated API sends the Kubernetes API server to.
SCRAPED = [("ServiceMonitor", monitor, pod, port, "TCP") for monitor, pod, port in (
    ("aws-load-balancer-controller", LB_CONTROLLER, 8080), ("karpenter", KARPENTER, 8080),
    ("kube-prometheus-stack-alertmanager", ALERTMANAGER, 8080), ("kube-prometheus-stack-alertmanager", ALERTMANAGER, 9093),
    ("kube-prometheus-stack-operator", OPERATOR, 10250), ("kube-prometheus-stack-prometheus", PROMETHEUS, 8080),
    ("kube-prometheus-stack-prometheus", PROMETHEUS, 9090), ("otel-collector", COLLECTOR, 8889))]
CALLED_BY_THE_CONTROL_PLANE = [
    ("APIService", "v1beta1.external.metrics.k8s.io", METRICS_API, 6443, "TCP"),
    ("MutatingWebhookConfiguration", "aws-load-balancer-webhook", LB_CONTROLLER, 9443, "TCP"),
    ("MutatingWebhookConfiguration", "kube-prometheus-stack-admission", OPERATOR, 10250, "TCP"),
    ("ValidatingWebhookConfiguration", "aws-load-balancer-webhook", LB_CONTROLLER, 9443, "TCP"),
    ("ValidatingWebhookConfiguration", "keda-admission", KEDA_WEBHOOKS, 9443, "TCP"),
    ("ValidatingWebhookConfiguration", "kube-prometheus-stack-admission", OPERATOR, 10250, "TCP"),
]
CALLERS = {"service-monitors-from-prometheus": (_reached({"ServiceMonitor"}), SCRAPED, PROMETHEUS),
           "webhooks-and-apis-from-the-control-plane": (_reached({"APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}),
                                                        CALLED_BY_THE_CONTROL_PLANE, "control-plane")}


@pytest.mark.parametrize("variant", ["dev", "prod"])
@pytest.mark.parametrize("targets, expected, caller", CALLERS.values(), ids=CALLERS.keys())
def test_every_port_the_charts_send_a_caller_to_admits_it(rendering, world, variant, targets, expected, caller):
    """Each pod port a rendered ServiceMonitor, webhook or APIService leads its caller to, through a Service, admits that caller."""
    here = world(variant)
    found = sorted(targets(rendering(variant), here))
    assert found == expected
    assert [(pod, port) for *_, pod, port, protocol in found if not here.admits(caller, pod, port, protocol)] == []


# The pods behind each TargetGroupBinding's Service (Grafana's Service is a subchart's: tests/test_entry.py says how it was checked).
BOUND = {"airflow-api-server": API, "kube-prometheus-stack-grafana": GRAFANA}


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_the_load_balancer_reaches_the_port_each_target_group_sends_to(rendering, world, variant):
    """Each binding's target group sends to a container port its pods admit from the load balancer's range, and no other."""
    result, here = rendering(variant), world(variant)
    groups = {g.outputs["arn"]: g.inputs["port"] for g in result.plan.of_type("aws:lb/targetGroup:TargetGroup")}
    bindings = {b["metadata"]["name"]: groups[b["spec"]["targetGroupARN"]] for b in result.declared("TargetGroupBinding")}
    assert bindings == {"airflow-api-server": 8080, "kube-prometheus-stack-grafana": 3000}
    for service, port in bindings.items():
        pod = here.pods[BOUND[service]]
        open_ports = [p.number for p in pod.ports if here.admits("load-balancer", BOUND[service], p.number, p.protocol)]
        assert open_ports == [port]


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_platform_namespace_has_a_default_deny(rendering, variant):
    """airflow, the task namespace, monitoring, keda and karpenter each have one policy that admits nothing; kube-system none."""
    result = rendering(variant)
    assert result.cfg.airflow.task_pods.namespace == "airflow-tasks"
    denying = sorted(p["metadata"]["namespace"] for p in result.declared("NetworkPolicy") if p["spec"] == DEFAULT_DENY_SPEC)
    assert denying == sorted(PLATFORM_NAMESPACES)
    assert {p["metadata"]["name"] for p in result.declared("NetworkPolicy") if p["spec"] == DEFAULT_DENY_SPEC} == {"default-deny-ingress"}


def test_a_renamed_task_namespace_gets_its_default_deny(plan_with):
    """The task namespace's default-deny follows airflow.taskPods.namespace."""
    airflow = {**stack_config("dev")["airflow-platform:airflow"], "taskPods": {"namespace": "team-tasks"}}
    plan = plan_with("dev", {"airflow-platform:airflow": airflow})
    [deny] = [r.inputs for r in plan.of_type(POLICY) if r.inputs["metadata"] == {"name": "default-deny-ingress", "namespace": "team-tasks"}]
    assert deny["spec"] == DEFAULT_DENY_SPEC


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_every_platform_pod_is_isolated_and_kube_system_only_the_controller(world, variant):
    """Every platform pod is isolated; in kube-system only the load balancer controller, so CoreDNS still answers every pod."""
    here = world(variant)
    assert [k for k, p in here.pods.items() if p.namespace in PLATFORM_NAMESPACES and not here.cluster.isolated(p)] == []
    assert sorted(k for k, p in here.pods.items() if p.namespace == "kube-system") == [LB_CONTROLLER]
    assert here.cluster.isolated(here.pods[LB_CONTROLLER])
    coredns = Pod("kube-system", "coredns", {"k8s-app": "kube-dns", "eks.amazonaws.com/component": "coredns"}, "10.0.0.53",
                  (ContainerPort(53, "dns", "UDP"), ContainerPort(53, "dns-tcp")))
    assert not here.cluster.isolated(coredns) and here.cluster.admits(here.pods[TASK], coredns, 53, "UDP")


@pytest.mark.parametrize("variant", ["dev", "prod", "prod-celery-and-kubernetes"])
def test_every_policy_selects_pods_that_listen_on_its_ports(world, variant):
    """Each policy selects some pod, and each port it opens is a container port of a pod it selects."""
    here = world(variant)
    problems = []
    for policy in here.cluster.policies:
        name = f"{policy['metadata']['namespace']}/{policy['metadata']['name']}"
        selected = [p for p in here.pods.values() if netpol.policies_selecting([policy], p)]
        if not selected:
            problems.append(f"{name} selects no pod")
        for rule in policy["spec"].get("ingress", []):
            for port in rule["ports"]:
                if not any((c.number, c.protocol) == (port["port"], port["protocol"]) for p in selected for c in p.ports):
                    problems.append(f"{name}: no selected pod listens on {port['port']}/{port['protocol']}")
    assert problems == []


def test_kubernetes_executor_pods_are_clients_like_the_workers(world):
    """A KubernetesExecutor pod (the workers' labels) reaches the API server, PgBouncer and the collector, and takes only log reads."""
    here = world("prod-celery-and-kubernetes")
    task = "airflow/kubernetes-executor-task"
    assert here.pods[task].labels == {"tier": "airflow", "component": "worker", "release": "airflow"}
    assert [here.admits(task, API, 8080), here.admits(task, PGBOUNCER, 6543), here.admits(task, COLLECTOR, 4318)] == [True, True, True]
    assert [here.admits(API, task, 8793), here.admits(SCHEDULER, task, 8793), here.admits(WORKER, task, 8080)] == [True, False, False]


def blocks(policy: dict) -> list[str]:
    return [peer["ipBlock"]["cidr"] for rule in policy["spec"].get("ingress", []) for peer in rule["from"] if "ipBlock" in peer]


def ip_blocks(plan: Plan, name: str) -> list[str]:
    [policy] = [r.inputs for r in plan.of_type(POLICY) if r.inputs["metadata"]["name"] == name]
    return blocks(policy)


CONTROL_PLANE_POLICIES = ["metrics-apiserver-ingress", "admission-webhooks-ingress", "prometheus-operator-ingress",
                          "aws-load-balancer-controller-ingress"]
LOAD_BALANCER_POLICIES = ["api-server-ingress", "grafana-ingress"]


@pytest.mark.parametrize("variant, control_plane, entry", [
    ("dev", ["10.40.224.0/23", "10.40.226.0/23"], ["10.40.240.0/23", "10.40.242.0/23"]),
    ("prod", ["10.50.224.0/23", "10.50.226.0/23", "10.50.228.0/23"], ["10.50.240.0/23", "10.50.242.0/23", "10.50.244.0/23"]),
    # An existing VPC given no subnets for them: its private subnets' ranges, as AWS reports them (the mocks answer
    # 10.90.<16 × i>.0/20), which its pods share.
    ("prod-existing-vpc", ["10.90.0.0/20", "10.90.16.0/20", "10.90.32.0/20"], ["10.90.0.0/20", "10.90.16.0/20", "10.90.32.0/20"]),
], ids=["dev", "prod", "prod-existing-vpc"])
def test_the_control_plane_and_the_load_balancer_are_admitted_from_their_subnets(rendering, variant, control_plane, entry):
    """The control plane's ports admit exactly its subnets' ranges, the internal load balancer's exactly the entry's."""
    plan = rendering(variant).plan
    assert {name: ip_blocks(plan, name) for name in CONTROL_PLANE_POLICIES + LOAD_BALANCER_POLICIES} == {
        **{name: control_plane for name in CONTROL_PLANE_POLICIES}, **{name: entry for name in LOAD_BALANCER_POLICIES}}
    assert sorted(r.inputs["metadata"]["name"] for r in plan.of_type(POLICY) if blocks(r.inputs)) == sorted(
        CONTROL_PLANE_POLICIES + LOAD_BALANCER_POLICIES)


def test_an_internet_facing_entry_is_admitted_from_the_public_subnets(plan_with):
    """An internet-facing load balancer's ports admit the new VPC's public subnets; the control plane's keep its own."""
    plan = plan_with("dev", {"airflow-platform:entry": {**stack_config("dev")["airflow-platform:entry"], "internetFacing": True}})
    assert {name: ip_blocks(plan, name) for name in LOAD_BALANCER_POLICIES} == {name: ["10.40.192.0/22", "10.40.196.0/22"]
                                                                               for name in LOAD_BALANCER_POLICIES}
    assert ip_blocks(plan, "metrics-apiserver-ingress") == ["10.40.224.0/23", "10.40.226.0/23"]


def test_without_an_entry_the_uis_take_only_their_cluster_peers():
    """With no load balancer, the API server admits the workers and Grafana Prometheus, and no address range."""
    plan = run_stack_config(without_sso("dev", entry=False), "dev")
    rules = {r.inputs["metadata"]["name"]: r.inputs["spec"]["ingress"] for r in plan.of_type(POLICY)
             if r.inputs["metadata"]["name"] in LOAD_BALANCER_POLICIES}
    assert rules == {
        "api-server-ingress": [{"from": [{"podSelector": {"matchLabels": policies.airflow_pods("worker")}}],
                                "ports": [{"protocol": "TCP", "port": 8080}]}],
        "grafana-ingress": [{"from": [{"podSelector": {"matchLabels": policies.PROMETHEUS}}], "ports": [{"protocol": "TCP", "port": 3000}]}],
    }


def test_the_vpc_cni_enforces_network_policies(prod_plan, dev_plan):
    """The vpc-cni add-on alone gets configuration values: exactly {"enableNetworkPolicy": "true"}."""
    for plan in (dev_plan, prod_plan):
        addons = {a.inputs["addonName"]: a.inputs for a in plan.of_type("aws:eks/addon:Addon")}
        assert json.loads(addons["vpc-cni"]["configurationValues"]) == VPC_CNI_CONFIGURATION == {"enableNetworkPolicy": "true"}
        assert [name for name, inputs in addons.items() if "configurationValues" in inputs] == ["vpc-cni"]


def _schemas(result: Rendering) -> Schemas:
    return Schemas(result.cfg.cluster.kubernetes_version)


@pytest.mark.parametrize("variant", ["dev", "prod", "prod-existing-vpc", "prod-celery-and-kubernetes"])
def test_the_policies_validate_for_the_clusters_kubernetes(rendering, variant):
    """Each declared NetworkPolicy is valid networking.k8s.io/v1 for Kubernetes 1.33, unknown fields refused."""
    result = rendering(variant)
    declared = result.declared("NetworkPolicy")
    assert len(declared) >= 19 and {p["apiVersion"] for p in declared} == {"networking.k8s.io/v1"}
    assert [e for p in declared for e in _schemas(result).errors(p)] == []


def _misspelt_peer(policy: dict) -> None:
    policy["spec"]["ingress"][0]["from"][0]["podSelectors"] = policy["spec"]["ingress"][0]["from"][0].pop("podSelector")


def _port_list(policy: dict) -> None:
    policy["spec"]["ingress"][0]["ports"][0]["port"] = [8080]


def _types_as_string(policy: dict) -> None:
    policy["spec"]["policyTypes"] = "Ingress"


@pytest.mark.parametrize("breaks, error", [
    (_misspelt_peer, "NetworkPolicy airflow/api-server-ingress: spec.ingress.0.from.0: Additional properties are not allowed "
                     "('podSelectors' was unexpected)"),
    (_port_list, "NetworkPolicy airflow/api-server-ingress: spec.ingress.0.ports.0.port: [8080] is not valid under any of the "
                 "given schemas"),
    (_types_as_string, "NetworkPolicy airflow/api-server-ingress: spec.policyTypes: 'Ingress' is not of type 'array', 'null'"),
], ids=["misspelt-peer", "port-as-list", "policy-types-as-string"])
def test_a_broken_policy_is_refused(rendering, breaks, error):
    """The check bites: a NetworkPolicy the API server would refuse is refused here too, in one line."""
    result = rendering("prod")
    [policy] = [copy.deepcopy(p) for p in result.declared("NetworkPolicy") if p["metadata"]["name"] == "api-server-ingress"]
    breaks(policy)
    assert _schemas(result).errors(policy) == [error]


class TestComponent:
    """Tests how the component declares its policies."""

    def test_policies_are_its_children_on_the_clusters_provider(self, prod_plan):
        """Every NetworkPolicy is the component's child, named after it, on the cluster's Kubernetes provider."""
        [component] = prod_plan.of_type(COMPONENT)
        [provider] = [r for r in prod_plan.of_type("pulumi:providers:kubernetes") if r.name == "airflow-prod-cluster-k8s"]
        made = prod_plan.of_type(POLICY)
        assert component.parent == prod_plan.of_type("airflow-platform:index:Platform")[0].urn
        assert {r.parent for r in made} == {component.urn} and {r.provider.rsplit("::", 1)[0] for r in made} == {provider.urn}
        assert sorted(r.name for r in made) == sorted(
            f"airflow-prod-network-policies-{p.namespace}-{p.name}" for p in policies.policies(["x"], ["y"], True, False))

    @pytest.mark.parametrize("namespace, owner", [
        ("airflow", "airflow-prod-airflow-namespace"), ("airflow-tasks", "airflow-prod-task-pods-namespace"),
        ("monitoring", "airflow-prod-observability-namespace"), ("keda", "airflow-prod-keda-namespace"),
        ("karpenter", "airflow-prod-karpenter-namespace"),
    ], ids=["airflow", "tasks", "monitoring", "keda", "karpenter"])
    def test_each_policy_comes_after_its_namespace(self, prod_plan, namespace, owner):
        """A namespace's policies depend on its Namespace resource (through its name, or on the component that makes it)."""
        namespace_urn = prod_plan.named(owner).urn
        made = [r for r in prod_plan.of_type(POLICY) if r.inputs["metadata"]["namespace"] == namespace]
        assert made and all(namespace_urn in r.dependencies + r.property_dependencies.get("metadata", []) for r in made)

    def test_pgbouncer_and_redis_policies_follow_the_chart(self, rendering):
        """PgBouncer's policy exists where the chart runs PgBouncer, Redis's where it runs the in-cluster broker."""
        found = {variant: sorted(p["metadata"]["name"] for p in rendering(variant).declared("NetworkPolicy")
                                 if p["metadata"]["name"] in ("pgbouncer-ingress", "redis-ingress"))
                 for variant in ("dev", "dev-with-pgbouncer", "prod", "prod-without-pgbouncer")}
        assert found == {"dev": ["redis-ingress"], "dev-with-pgbouncer": ["pgbouncer-ingress", "redis-ingress"],
                         "prod": ["pgbouncer-ingress"], "prod-without-pgbouncer": []}


def _policy(namespace: str, pods: dict, ingress: list | None = None, types: list | None = None, egress: list | None = None) -> dict:
    spec: dict = {"podSelector": pods}
    for key, value in (("ingress", ingress), ("policyTypes", types), ("egress", egress)):
        if value is not None:
            spec[key] = value
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


WEB = Pod("shop", "web", {"app": "web", "tier": "front"}, "10.0.1.10", (ContainerPort(8080, "http"), ContainerPort(53, "dns", "UDP")))
CLIENT = Pod("shop", "client", {"app": "client"}, "10.0.2.20")
OTHER = Pod("ops", "client", {"app": "client"}, "10.0.3.30")
FROM_CLIENTS = [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]
EVALUATIONS = {
    "no-policy-admits-everything": ([], OTHER, 9999, "TCP", True),
    "egress-only-policy-leaves-ingress-open": ([_policy("shop", {}, types=["Egress"], egress=[{}])], OTHER, 8080, "TCP", True),
    "policy-types-default-to-ingress": ([_policy("shop", {})], CLIENT, 8080, "TCP", False),
    "without-policy-types-egress-rules-still-isolate-ingress": ([_policy("shop", {}, egress=[{}])], OTHER, 8080, "TCP", False),
    "policy-elsewhere-does-not-isolate": ([_policy("ops", {})], CLIENT, 8080, "TCP", True),
    "pod-selector-is-the-policys-namespace": ([_policy("shop", {}, FROM_CLIENTS)], OTHER, 8080, "TCP", False),
    "pod-selector-admits-its-namespaces-pods": ([_policy("shop", {}, FROM_CLIENTS)], CLIENT, 8080, "TCP", True),
    "namespace-selector-by-metadata-name": ([_policy("shop", {}, [{"from": [{"namespaceSelector": {"matchLabels": {
        netpol.NAMESPACE_NAME_LABEL: "ops"}}}]}])], OTHER, 8080, "TCP", True),
    "both-selectors-must-match": ([_policy("shop", {}, [{"from": [{"namespaceSelector": {"matchLabels": {netpol.NAMESPACE_NAME_LABEL: "ops"}},
                                                                 "podSelector": {"matchLabels": {"app": "batch"}}}]}])], OTHER, 8080, "TCP", False),
    "empty-namespace-selector-is-every-namespace": ([_policy("shop", {}, [{"from": [{"namespaceSelector": {}}]}])], OTHER, 8080, "TCP", True),
    "ip-block-matches-a-pods-address": ([_policy("shop", {}, [{"from": [{"ipBlock": {"cidr": "10.0.3.0/24"}}]}])], OTHER, 8080, "TCP", True),
    "ip-block-except-carves-out": ([_policy("shop", {}, [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.3.0/24"]}}]}])],
                                   OTHER, 8080, "TCP", False),
    "pod-selector-never-matches-an-address": ([_policy("shop", {}, [{"from": [{"podSelector": {}}]}])], Address("10.0.2.20"), 8080, "TCP", False),
    "empty-rule-admits-everything": ([_policy("shop", {}, [{}])], Address("198.51.100.1"), 1, "TCP", True),
    "numbered-port": ([_policy("shop", {}, [{"ports": [{"port": 8080}]}])], OTHER, 8080, "TCP", True),
    "numbered-port-other-number": ([_policy("shop", {}, [{"ports": [{"port": 8080}]}])], OTHER, 8081, "TCP", False),
    "protocol-defaults-to-tcp": ([_policy("shop", {}, [{"ports": [{"port": 53}]}])], OTHER, 53, "UDP", False),
    "named-port-resolved-on-the-destination": ([_policy("shop", {}, [{"ports": [{"port": "http"}]}])], OTHER, 8080, "TCP", True),
    "named-port-needs-its-protocol": ([_policy("shop", {}, [{"ports": [{"port": "dns"}]}])], OTHER, 53, "TCP", False),
    "named-udp-port": ([_policy("shop", {}, [{"ports": [{"port": "dns", "protocol": "UDP"}]}])], OTHER, 53, "UDP", True),
    "end-port-range": ([_policy("shop", {}, [{"ports": [{"port": 8000, "endPort": 8100}]}])], OTHER, 8080, "TCP", True),
    "port-without-number-is-every-port-of-its-protocol": ([_policy("shop", {}, [{"ports": [{"protocol": "UDP"}]}])], OTHER, 5353, "UDP", True),
    "match-expressions-in": ([_policy("shop", {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]})],
                             OTHER, 8080, "TCP", True),
    "match-expressions-not-in": ([_policy("shop", {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["back"]}]})],
                                 OTHER, 8080, "TCP", False),
    "match-expressions-exists": ([_policy("shop", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]})], OTHER, 8080, "TCP", False),
    "match-expressions-does-not-exist": ([_policy("shop", {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})],
                                         OTHER, 8080, "TCP", True),
    "policies-add-up": ([_policy("shop", {}), _policy("shop", {"matchLabels": {"app": "web"}}, FROM_CLIENTS)], CLIENT, 8080, "TCP", True),
}


@pytest.mark.parametrize("policy_list, source, port, protocol, admitted", EVALUATIONS.values(), ids=EVALUATIONS.keys())
def test_the_evaluator_reads_policies_as_kubernetes_does(policy_list, source, port, protocol, admitted):
    """Connections into a pod of namespace shop, for each rule of the NetworkPolicy API."""
    assert Cluster(policy_list, {"ops": {"team": "ops"}}).admits(source, WEB, port, protocol) is admitted


def test_the_evaluator_leaves_host_network_pods_alone():
    """A pod on its host's network is not isolated by any policy (the policy agent attaches to pods' own interfaces)."""
    host = dataclasses.replace(WEB, host_network=True)
    assert Cluster([_policy("shop", {})]).admits(OTHER, host, 8080) is True


def test_the_plan_shows_what_each_policy_admits(dev_plan):
    """The offline plan prints, under each policy, the pods it isolates and each port it opens to whom."""
    out = plan_cli.render(dev_plan).splitlines()
    start = out.index(next(line for line in out if line.startswith("NetworkPolicies airflow-dev-network-policies ")))
    shown = out[start:start + 5]
    assert shown == [
        f"NetworkPolicies airflow-dev-network-policies ({len(dev_plan.of_type(POLICY))} resources)",
        "  NetworkPolicy airflow-dev-network-policies-airflow-api-server-ingress",
        "      isolates pods tier=airflow,release=airflow,component=api-server in airflow",
        "      admits 8080/TCP from pods tier=airflow,release=airflow,component=worker of airflow, 10.40.240.0/23, 10.40.242.0/23",
        "  NetworkPolicy airflow-dev-network-policies-airflow-default-deny-ingress",
    ]
    assert "      isolates every pod in airflow-tasks" in out
    assert "      admits 4318/TCP from every pod of airflow" in out
