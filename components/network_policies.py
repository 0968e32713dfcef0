"""NetworkPolicies: every platform namespace closed to incoming connections, then opened for exactly the connections the
platform makes, as Kubernetes NetworkPolicy objects the VPC CNI enforces (cluster.py switches its policy agent on).

In airflow, the task-pod namespace, monitoring, keda and karpenter a default-deny policy isolates every pod for ingress;
the policies beside it admit, each on its port only:

- the Airflow API server (8080) from the Celery workers, whose tasks call its execution API (KubernetesExecutor pods
  carry the workers' labels; the triggerer and the DAG processor serve that API in process), and from the entry's load
  balancer; the workers' (8793) and the triggerer's (8794) log servers from the API server, which reads live logs there;
  PgBouncer (6543) from the airflow namespace's pods (every Airflow process, the chart's jobs, the team-roles Job and the
  task metrics exporter use the metadata DB through it); the chart's Redis (6379, the in-cluster broker) from the
  workers and the scheduler, the broker's only clients;
- the OpenTelemetry Collector's OTLP port (4318) from the airflow namespace, whose processes all push their metrics
  there (task pods do not), and its Prometheus exporter (8889) from Prometheus; Prometheus's own port (9090) from
  Grafana and Prometheus, Alertmanager's (9093) from Prometheus and Grafana, Alertmanager's gossip (9094) between its
  replicas, Grafana (3000) from the load balancer and from Prometheus, and every other port a ServiceMonitor names
  (the config reloaders', kube-state-metrics', the operator's, Karpenter's, the load balancer controller's) from
  Prometheus;
- what the Kubernetes API server calls: KEDA's external metrics API (6443), which alone calls the KEDA operator (9666),
  KEDA's admission webhooks (9443), the Prometheus operator's webhook (10250) and the load balancer controller's (9443);
  Karpenter's chart enables no webhook.
- Task pods (KubernetesPodOperator) take nothing: they are clients only.

The policies in airflow, the task namespace and monitoring follow their namespaces (through the namespaces' names); KEDA's
and Karpenter's components do not hand theirs out, so the policies there wait for those components.

kube-system belongs to EKS (CoreDNS takes DNS from every pod; aws-node and kube-proxy are on the host's network): it gets
no default-deny, only a policy that isolates the one platform workload there, the load balancer controller. The policies
restrict ingress only: egress, DNS included, is not restricted. Nothing scrapes PgBouncer's exporter (9127), KEDA's
metrics or the objinsync status ports, so they stay closed; a pod's own node (the kubelet's probes) is always admitted.

Where the control plane and the load balancer connect from: with target type ip the load balancer connects to the pods from
its network interfaces in the subnets it is placed in (the entry subnets, or the new VPC's public ones when it is
internet-facing), and EKS's control plane from its interfaces in the cluster's subnets (the control-plane subnets). So
those ports admit those subnets' CIDRs (a new VPC's from its layout, an existing VPC's as AWS reports them), not the
whole VPC. Pods take their addresses from their nodes' private subnets (the VPC CNI) and the policy agent matches
addresses alone, which is why the load balancer and the control plane have subnets of their own (network.py): a pod
passes none of those rules. An existing VPC given no such subnets (`network.existingControlPlaneSubnetIds`,
`existingEntrySubnetIds`) falls back to its private ones, and then every pod passes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import autoscaling, karpenter, lb_controller
from components.config import PlatformConfig
from components.entry import AIRFLOW_PORT, GRAFANA_PORT
from components.names import AIRFLOW_NAMESPACE, AIRFLOW_RELEASE
from components.network import Network, subnet_layout
from components.observability_values import COLLECTOR, KPS_RELEASE, NAMESPACE as MONITORING_NAMESPACE, OTLP_HTTP_PORT, PROMETHEUS_EXPORTER_PORT

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # the label the API server sets on every namespace
DEFAULT_DENY = "default-deny-ingress"
KUBE_SYSTEM = "kube-system"

# Airflow chart pods by component (its tier and release labels on every pod), and its ports (`ports.*` in its values).
AIRFLOW = {"tier": "airflow", "release": AIRFLOW_RELEASE}
WORKER_LOGS_PORT, TRIGGERER_LOGS_PORT, REDIS_PORT, PGBOUNCER_PORT = 8793, 8794, 6379, 6543
# kube-prometheus-stack: Prometheus's and Alertmanager's pods (made by the operator) by the labels the chart's Services
# select them by; Grafana and kube-state-metrics by their subcharts' selector labels; the operator by its own.
PROMETHEUS = {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": f"{KPS_RELEASE}-prometheus"}
ALERTMANAGER = {"alertmanager": f"{KPS_RELEASE}-alertmanager", "app.kubernetes.io/name": "alertmanager"}
GRAFANA = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": KPS_RELEASE}
KUBE_STATE_METRICS = {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": KPS_RELEASE}
PROMETHEUS_OPERATOR = {"app": f"{KPS_RELEASE}-operator", "release": KPS_RELEASE}
COLLECTOR_PODS = {"app.kubernetes.io/name": "opentelemetry-collector", "app.kubernetes.io/instance": COLLECTOR,
                  "component": "standalone-collector"}
PROMETHEUS_PORT, ALERTMANAGER_PORT, ALERTMANAGER_GOSSIP_PORT, CONFIG_RELOADER_PORT = 9090, 9093, 9094, 8080
KUBE_STATE_METRICS_PORT, OPERATOR_PORT = 8080, 10250  # the operator serves its metrics and its webhook on one port
# KEDA: the external metrics API server, the operator it asks over gRPC, the admission webhooks.
KEDA_METRICS_APISERVER, KEDA_OPERATOR, KEDA_WEBHOOKS = ({"app": "keda-operator-metrics-apiserver"}, {"app": "keda-operator"},
                                                         {"app": "keda-admission-webhooks"})
KEDA_METRICS_API_PORT, KEDA_OPERATOR_GRPC_PORT, KEDA_WEBHOOK_PORT = 6443, 9666, 9443
KARPENTER = {"app.kubernetes.io/name": "karpenter", "app.kubernetes.io/instance": "karpenter"}
KARPENTER_METRICS_PORT = 8080
LB_CONTROLLER_WEBHOOK_PORT, LB_CONTROLLER_METRICS_PORT = 9443, 8080


def airflow_pods(component: str) -> dict[str, str]:
    return {**AIRFLOW, "component": component}


def _pods(labels: dict[str, str]) -> dict[str, Any]:
    """Pods of the policy's own namespace."""
    return {"podSelector": {"matchLabels": labels}}


def _namespace(namespace: str, labels: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Pods of another namespace: all of them, or those with `labels`."""
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
    if labels is not None:
        peer["podSelector"] = {"matchLabels": labels}
    return peer


def _blocks(cidrs: Sequence[pulumi.Input[str]]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def _rule(peers: Sequence[dict[str, Any]], *ports: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"from": list(peers), "ports": [{"protocol": protocol, "port": port} for port in ports]}


@dataclass(frozen=True)
class Policy:
    name: str
    namespace: str  # a key of the component's namespaces: airflow, tasks, monitoring, keda, karpenter, kube-system
    pods: dict[str, str]  # the pods it isolates, by their labels ({} for all of the namespace's)
    ingress: tuple[dict[str, Any], ...] = ()


def policies(control_plane_cidrs: Sequence[pulumi.Input[str]], load_balancer_cidrs: Sequence[pulumi.Input[str]],
             pgbouncer: bool, in_cluster_broker: bool) -> list[Policy]:
    """Every policy: a default-deny in each platform namespace, then one per workload that takes connections."""
    prometheus_here, prometheus = _pods(PROMETHEUS), _namespace(MONITORING_NAMESPACE, PROMETHEUS)
    control_plane, load_balancer = _blocks(control_plane_cidrs), _blocks(load_balancer_cidrs)
    api_server = _pods(airflow_pods("api-server"))
    found = [Policy(DEFAULT_DENY, namespace, {}) for namespace in ("airflow", "tasks", "monitoring", "keda", "karpenter")]
    found += [
        Policy("api-server-ingress", "airflow", airflow_pods("api-server"),
               (_rule([_pods(airflow_pods("worker")), *load_balancer], AIRFLOW_PORT),)),
        Policy("worker-logs-ingress", "airflow", airflow_pods("worker"), (_rule([api_server], WORKER_LOGS_PORT),)),
        Policy("triggerer-logs-ingress", "airflow", airflow_pods("triggerer"), (_rule([api_server], TRIGGERER_LOGS_PORT),)),
    ]
    if pgbouncer:
        found.append(Policy("pgbouncer-ingress", "airflow", airflow_pods("pgbouncer"), (_rule([{"podSelector": {}}], PGBOUNCER_PORT),)))
    if in_cluster_broker:
        found.append(Policy("redis-ingress", "airflow", airflow_pods("redis"),
                            (_rule([_pods(airflow_pods("worker")), _pods(airflow_pods("scheduler"))], REDIS_PORT),)))
    found += [
        Policy("otel-collector-ingress", "monitoring", COLLECTOR_PODS,
               (_rule([_namespace(AIRFLOW_NAMESPACE)], OTLP_HTTP_PORT), _rule([prometheus_here], PROMETHEUS_EXPORTER_PORT))),
        Policy("prometheus-ingress", "monitoring", PROMETHEUS,
               (_rule([prometheus_here, _pods(GRAFANA)], PROMETHEUS_PORT), _rule([prometheus_here], CONFIG_RELOADER_PORT))),
        Policy("alertmanager-ingress", "monitoring", ALERTMANAGER,
               (_rule([prometheus_here, _pods(GRAFANA)], ALERTMANAGER_PORT), _rule([prometheus_here], CONFIG_RELOADER_PORT),
                _rule([_pods(ALERTMANAGER)], ALERTMANAGER_GOSSIP_PORT),
                _rule([_pods(ALERTMANAGER)], ALERTMANAGER_GOSSIP_PORT, protocol="UDP"))),
        Policy("grafana-ingress", "monitoring", GRAFANA, (_rule([prometheus_here, *load_balancer], GRAFANA_PORT),)),
        Policy("kube-state-metrics-ingress", "monitoring", KUBE_STATE_METRICS, (_rule([prometheus_here], KUBE_STATE_METRICS_PORT),)),
        Policy("prometheus-operator-ingress", "monitoring", PROMETHEUS_OPERATOR, (_rule([prometheus_here, *control_plane], OPERATOR_PORT),)),
        Policy("metrics-apiserver-ingress", "keda", KEDA_METRICS_APISERVER, (_rule(control_plane, KEDA_METRICS_API_PORT),)),
        Policy("operator-ingress", "keda", KEDA_OPERATOR, (_rule([_pods(KEDA_METRICS_APISERVER)], KEDA_OPERATOR_GRPC_PORT),)),
        Policy("admission-webhooks-ingress", "keda", KEDA_WEBHOOKS, (_rule(control_plane, KEDA_WEBHOOK_PORT),)),
        Policy("karpenter-ingress", "karpenter", KARPENTER, (_rule([prometheus], KARPENTER_METRICS_PORT),)),
        Policy("aws-load-balancer-controller-ingress", KUBE_SYSTEM, dict(lb_controller.CONTROLLER_LABELS),
               (_rule(control_plane, LB_CONTROLLER_WEBHOOK_PORT), _rule([prometheus], LB_CONTROLLER_METRICS_PORT))),
    ]
    # An empty `from` admits every source: a rule left without peers (an empty range list) goes instead.
    return [Policy(p.name, p.namespace, p.pods, tuple(r for r in p.ingress if r["from"])) for p in found]


def address_ranges(config: PlatformConfig, network: Network,
                   opts: pulumi.InvokeOptions) -> tuple[list[pulumi.Input[str]], list[pulumi.Input[str]]]:
    """(the control plane's, the entry's load balancer's) source CIDRs: the subnets of the control plane's interfaces,
    and those the load balancer is in (none without an entry). A new VPC's come from its layout; an existing VPC's are
    read from AWS (the config refuses an internet-facing entry there)."""
    if config.network.existing_vpc_id is None:
        layout = subnet_layout(config.network.vpc_cidr, config.zones)
        control_plane, entry, public = [z.control_plane for z in layout], [z.entry for z in layout], [z.public for z in layout]
    else:
        def ranges(subnet_ids: Sequence[pulumi.Input[str]]) -> list[pulumi.Input[str]]:
            return [aws.ec2.get_subnet_output(id=subnet_id, opts=opts).cidr_block for subnet_id in subnet_ids]
        control_plane, entry, public = ranges(network.control_plane_subnet_ids), ranges(network.entry_subnet_ids), []
    if config.entry is None:
        return control_plane, []
    return control_plane, (public if config.entry.internet_facing else entry)


@dataclass
class NetworkPoliciesArgs:
    provider: k8s.Provider
    airflow_namespace: pulumi.Input[str]
    task_namespace: pulumi.Input[str]
    monitoring_namespace: pulumi.Input[str]
    # KEDA's and Karpenter's components create their namespaces without handing them out: their policies wait for them.
    keda: pulumi.Resource
    karpenter: pulumi.Resource
    control_plane_cidrs: Sequence[pulumi.Input[str]]
    load_balancer_cidrs: Sequence[pulumi.Input[str]] = ()
    pgbouncer: bool = False
    in_cluster_broker: bool = False


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:NetworkPolicies", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        # The namespace outputs carry the dependency on their Namespace resources; kube-system always exists.
        namespaces: dict[str, tuple[pulumi.Input[str], list[pulumi.Resource]]] = {
            "airflow": (args.airflow_namespace, []), "tasks": (args.task_namespace, []),
            "monitoring": (args.monitoring_namespace, []), "keda": (autoscaling.NAMESPACE, [args.keda]),
            "karpenter": (karpenter.NAMESPACE, [args.karpenter]), KUBE_SYSTEM: (KUBE_SYSTEM, [])}
        names = []
        for policy in policies(args.control_plane_cidrs, args.load_balancer_cidrs, args.pgbouncer, args.in_cluster_broker):
            namespace, depends_on = namespaces[policy.namespace]
            spec: dict[str, Any] = {"podSelector": {"matchLabels": policy.pods} if policy.pods else {}, "policyTypes": ["Ingress"]}
            if policy.ingress:
                spec["ingress"] = list(policy.ingress)
            made = k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy.namespace}-{policy.name}", metadata={"name": policy.name, "namespace": namespace}, spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))
            names.append(made.metadata["name"])
        self.register_outputs({"policies": names})
