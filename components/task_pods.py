"""Task pods: the namespace where KubernetesPodOperator tasks run, fenced in by RBAC, a quota and default limits.

Airflow's workers (and the triggerer, which watches deferred pods) may launch and manage pods here and
nowhere else; the pods run as their own service account, which holds no permission at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.config import TaskPodsConfig

TASK_SERVICE_ACCOUNT = "airflow-task"
LAUNCHER_ROLE = "airflow-pod-launcher"
# What the KubernetesPodOperator does with its pods: create, watch, read logs, exec (XCom sidecar), clean up.
LAUNCHER_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "patch", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]
# Pod Security Admission: the API server refuses any pod short of the restricted profile (non-root, no privilege
# escalation, no capabilities, the runtime's seccomp profile, only ephemeral and configuration volumes), at the cluster's
# version of the profile. The platform's namespaces all enforce it, node-exporter's alone excepted (observability.py).
POD_SECURITY_LABELS = {"pod-security.kubernetes.io/enforce": "restricted"}


@dataclass
class TaskPodsArgs:
    config: TaskPodsConfig
    launcher_namespace: str
    launcher_service_accounts: Sequence[str]
    provider: k8s.Provider


class TaskPods(pulumi.ComponentResource):
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: TaskPodsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:TaskPods", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": cfg.namespace, "labels": POD_SECURITY_LABELS}, opts=child)
        in_namespace = {"namespace": namespace.metadata["name"]}
        self.namespace = namespace.metadata["name"]

        k8s.core.v1.ServiceAccount(f"{name}-account", metadata={"name": TASK_SERVICE_ACCOUNT, **in_namespace},
                                   automount_service_account_token=False, opts=child)
        role = k8s.rbac.v1.Role(f"{name}-launcher", metadata={"name": LAUNCHER_ROLE, **in_namespace}, rules=LAUNCHER_RULES, opts=child)
        k8s.rbac.v1.RoleBinding(
            f"{name}-launcher-binding", metadata={"name": LAUNCHER_ROLE, **in_namespace},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata["name"]},
            subjects=[{"kind": "ServiceAccount", "name": account, "namespace": args.launcher_namespace}
                      for account in args.launcher_service_accounts],
            opts=child)
        k8s.core.v1.ResourceQuota(f"{name}-quota", metadata={"name": "task-pods", **in_namespace}, spec={"hard": {
            "requests.cpu": str(cfg.quota_cpu),
            "requests.memory": f"{cfg.quota_memory_gib}Gi",
            "limits.memory": f"{cfg.quota_memory_gib}Gi",
            "pods": str(cfg.quota_pods),
        }}, opts=child)
        # A quota on requests needs every pod to state them: containers that do not get these.
        memory = f"{cfg.default_memory_mib}Mi"
        k8s.core.v1.LimitRange(f"{name}-defaults", metadata={"name": "task-pod-defaults", **in_namespace}, spec={"limits": [{
            "type": "Container",
            "defaultRequest": {"cpu": f"{cfg.default_cpu_millicores}m", "memory": memory},
            "default": {"memory": memory},
        }]}, opts=child)
        self.register_outputs({"namespace": self.namespace})
