"""The `airflow.nodes` alerts: pods that wait for a node, and Karpenter failing to launch one (pure functions, no Pulumi).

Pods come from kube-state-metrics (job kube-state-metrics, honorLabels, so `namespace` and `pod` are the pod's). Karpenter's
series come from the controller's ServiceMonitor (the chart's, enabled in karpenter.karpenter_values): Prometheus scrapes
port http-metrics (8080) of Service `karpenter` in namespace karpenter, so they carry job="karpenter", namespace="karpenter"
and the controller pod. The metric names are Karpenter 1.14.1's: the reference page website/content/en/v1.14/reference/metrics.md
of github.com/aws/karpenter-provider-aws (generated from the code), and the code of github.com/kubernetes-sigs/karpenter at
tag v1.14.1, cited at each metric below. Only the elected leader runs Karpenter's controllers, so only it exports them.
"""

from __future__ import annotations

from components.alerting import WORKER_DEPLOYMENT, Alert
from components.config import PlatformConfig
from components.names import AIRFLOW_NAMESPACE

# Karpenter counts a NodeClaim it deletes because its instance never came up in karpenter_nodeclaims_disrupted_total
# {nodepool, capacity_type, reason} (pkg/metrics/metrics.go), with one of these reasons: insufficient_capacity and
# nodeclass_not_ready when CreateFleet fails so (pkg/controllers/nodeclaim/lifecycle/launch.go; the AWS provider maps
# InsufficientInstanceCapacity, VcpuLimitExceeded, MaxSpotInstanceCountExceeded, InsufficientFreeAddressesInSubnet and
# the like to insufficient capacity, pkg/errors/errors.go), launch_timeout when any other launch error persists for 5
# minutes and registration_timeout when the instance runs but no node registers within 15 (lifecycle/liveness.go). The
# other reasons are voluntary disruption (empty, underutilized, drifted, expired...), which is not a failure.
LAUNCH_FAILURES = 'karpenter_nodeclaims_disrupted_total{reason=~"insufficient_capacity|nodeclass_not_ready|launch_timeout|registration_timeout"}'
# A node registering: karpenter_nodes_created_total{nodepool, zone} (pkg/metrics/metrics.go, incremented in
# lifecycle/registration.go).
NODES_JOINED = "karpenter_nodes_created_total"
# 1 for the current status of each condition of each NodePool: operatorpkg's status controller, which Karpenter runs for
# NodePools (pkg/controllers/controllers.go), labelled name, type, status, reason. A NodePool is Ready=False while its
# EC2NodeClass is not ready (subnets, security groups, AMI or instance profile unresolved) or it fails validation, and
# Karpenter then launches nothing for it.
NODE_POOL_NOT_READY = 'operator_nodepool_status_condition_count{type="Ready", status="False"}'
# karpenter_nodepools_usage and karpenter_nodepools_limit{nodepool, resource_type} (pkg/controllers/metrics/nodepool/
# controller.go): the capacity of the pool's nodes and its spec.limits, cpu in cores and memory in bytes (usage also has
# pods, nodes and ephemeral_storage, which no limit matches).
USAGE, LIMIT = "karpenter_nodepools_usage", "karpenter_nodepools_limit"
LIMIT_SHARE = 0.9
# How far back a launch failure counts, and a node joining clears it: a NodeClaim that never registers fails only after
# 15 minutes, the next one 15 minutes later.
LAUNCH_WINDOW = "30m"


def _grew(counter: str, window: str) -> str:
    """The series of a counter that grew within the window. A labelled counter is born at its first increment, which
    increase() cannot see (it needs two samples), so a series that has appeared within the window counts as grown too."""
    return f"(increase({counter}[{window}]) > 0 or ({counter} unless {counter} offset {window}))"


def _pending_longer(namespace: str, seconds: int) -> str:
    """The pods of the namespace in phase Pending whose age is over the threshold. A pod is Pending only before it first
    runs (waiting for a node, pulling its image, running its init containers), so its age is how long it has been Pending;
    the age, unlike a `for`, survives a gap in the series (kube-state-metrics restarting). max by drops the uid."""
    return (f'(time() - max by (namespace, pod) (kube_pod_created{{namespace="{namespace}"}})) > {seconds}'
            f' and on (namespace, pod) max by (namespace, pod) (kube_pod_status_phase{{namespace="{namespace}", phase="Pending"}}) == 1')


def alerts(cfg: PlatformConfig) -> list[Alert]:
    minutes = cfg.alerting.pending_pod_minutes
    task_namespace = cfg.airflow.task_pods.namespace
    return [
        # The worker Deployment's pods, by owner: a pod whose ReplicaSet is the Deployment's (<deployment>-<pod-template-hash>,
        # the hash without dashes). Not by pod name: a KubernetesExecutor pod of a DAG airflow_worker_health would be
        # airflow-worker-health-<id>, and a pod name says nothing of who made it.
        Alert("AirflowWorkerPodsPending",
              f"count({_pending_longer(AIRFLOW_NAMESPACE, minutes * 60)}"
              f' and on (namespace, pod) kube_pod_owner{{namespace="{AIRFLOW_NAMESPACE}", owner_kind="ReplicaSet", owner_name=~"{WORKER_DEPLOYMENT}-[a-z0-9]+"}}) > 0',
              "0m", "warning", "workers", "Celery worker pods wait for a node",
              f"{{{{ $value }}}} Celery worker pod(s) Pending for over {minutes} minutes: KEDA asked for workers that Karpenter "
              "found no node for, or that cannot pull their image or finish their init containers.", "alerting.pendingPodMinutes"),
        Alert("AirflowTaskPodsPending", f"count({_pending_longer(task_namespace, minutes * 60)}) > 0",
              "0m", "warning", "tasks", "Task pods wait for a node",
              f"{{{{ $value }}}} pod(s) of namespace {task_namespace} Pending for over {minutes} minutes: their "
              "KubernetesPodOperator tasks have not started.", "alerting.pendingPodMinutes"),
        # Per NodePool: launches failed within the window and no node of the pool joined in it (one Spot offering out of
        # capacity is routine: Karpenter retries with another, and the node that joins clears it), or the pool is not Ready.
        Alert("KarpenterCannotLaunchNodes",
              f"count by (nodepool) {_grew(LAUNCH_FAILURES, LAUNCH_WINDOW)}"
              f" unless on (nodepool) count by (nodepool) {_grew(NODES_JOINED, LAUNCH_WINDOW)}"
              f' or max by (nodepool) (label_replace({NODE_POOL_NOT_READY}, "nodepool", "$1", "name", "(.+)")) > 0',
              "10m", "warning", "karpenter", "Karpenter cannot launch nodes",
              "NodePool {{ $labels.nodepool }} gets no nodes: its NodeClaims have failed to launch or register in the last 30 minutes "
              "and none of its nodes has joined, or the NodePool is not Ready. Its pending pods wait."),
        Alert("KarpenterNodePoolAtLimit",
              f"max by (nodepool, resource_type) ({USAGE}) / on (nodepool, resource_type) max by (nodepool, resource_type) ({LIMIT})"
              f" >= {LIMIT_SHARE}",
              "15m", "warning", "karpenter", "A NodePool is at its limit",
              "NodePool {{ $labels.nodepool }} has used {{ $value | humanizePercentage }} of its {{ $labels.resource_type }} limit for 15 "
              "minutes: Karpenter launches no node that would pass the limit, so more pods of the pool wait."),
    ]
