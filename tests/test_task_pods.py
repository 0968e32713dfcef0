"""Tests the TaskPods component: the KubernetesPodOperator namespace, its RBAC, quota and default limits."""

from __future__ import annotations

import pytest

from components.config import ConfigError
from components.names import SERVICE_ACCOUNTS
from tests.conftest import stack_config
from tools.offline import Plan

STACKS = [("dev_plan", "dev"), ("prod_plan", "prod")]
STACK_IDS = [s[1] for s in STACKS]
COMPONENT = "airflow-platform:index:TaskPods"
K8S_PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "restricted"}
LAUNCHER_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "patch", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]
LAUNCHERS = [{"kind": "ServiceAccount", "name": "airflow-worker", "namespace": "airflow"},
             {"kind": "ServiceAccount", "name": "airflow-triggerer", "namespace": "airflow"}]
DEFAULT_LIMITS = [{"type": "Container", "defaultRequest": {"cpu": "500m", "memory": "512Mi"}, "default": {"memory": "512Mi"}}]


def component(plan: Plan):
    [found] = plan.of_type(COMPONENT)
    return found


def part(plan: Plan, suffix: str):
    """A TaskPods child by its logical-name suffix: namespace, account, launcher, launcher-binding, quota, defaults."""
    return plan.named(f"{component(plan).name}-{suffix}")


def airflow_config(stack: str, **changes) -> dict:
    """The stack file's airflow map (so the required dagSync.image stays) with some keys replaced."""
    airflow = stack_config(stack)["airflow-platform:airflow"]
    airflow.update(changes)
    return airflow


def chart_values(plan: Plan, env: str) -> dict:
    return plan.named(f"airflow-{env}-airflow-release").inputs["values"]


@pytest.fixture(params=STACKS, ids=STACK_IDS)
def plan(request) -> Plan:
    return request.getfixturevalue(request.param[0])


class TestNamespace:
    """Tests the namespace task pods run in."""

    def test_default_name_and_pod_security_labels(self, plan):
        """Both stacks use airflow-tasks, enforcing the restricted Pod Security profile."""
        assert part(plan, "namespace").inputs["metadata"] == {"name": "airflow-tasks", "labels": POD_SECURITY}
        assert plan.outputs["taskPodsNamespace"] == "airflow-tasks"

    def test_component_declares_exactly_six_objects_all_in_the_namespace(self, plan):
        """The namespace plus five namespaced objects, each placed in airflow-tasks."""
        children = sorted((r.type, r.inputs["metadata"]["name"]) for r in plan.descendants(component(plan)))
        assert children == [
            ("kubernetes:core/v1:LimitRange", "task-pod-defaults"),
            ("kubernetes:core/v1:Namespace", "airflow-tasks"),
            ("kubernetes:core/v1:ResourceQuota", "task-pods"),
            ("kubernetes:core/v1:ServiceAccount", "airflow-task"),
            ("kubernetes:rbac.authorization.k8s.io/v1:Role", "airflow-pod-launcher"),
            ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "airflow-pod-launcher"),
        ]
        namespaces = {r.inputs["metadata"].get("namespace") for r in plan.descendants(component(plan))
                      if r.type != "kubernetes:core/v1:Namespace"}
        assert namespaces == {"airflow-tasks"}


class TestServiceAccount:
    """Tests the account task pods run as."""

    def test_account_mounts_no_token(self, plan):
        """airflow-task never gets an API token mounted, so a task pod cannot talk to the Kubernetes API."""
        account = part(plan, "account")
        assert account.inputs["metadata"] == {"name": "airflow-task", "namespace": "airflow-tasks"}
        assert account.inputs["automountServiceAccountToken"] is False

    def test_account_is_bound_to_nothing(self, plan):
        """No RoleBinding anywhere in the program names airflow-task: it holds no permission."""
        subjects = [s["name"] for b in plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
                    for s in b.inputs.get("subjects", [])]
        assert "airflow-task" not in subjects
        assert subjects == ["airflow-worker", "airflow-triggerer"]


class TestLauncherRbac:
    """Tests who may launch pods in the namespace, and what they may do."""

    def test_role_rules_are_exact(self, plan):
        """The launcher Role grants exactly what the KubernetesPodOperator uses: pods, their logs, exec, events."""
        role = part(plan, "launcher")
        assert role.inputs["metadata"] == {"name": "airflow-pod-launcher", "namespace": "airflow-tasks"}
        assert role.inputs["rules"] == LAUNCHER_RULES

    def test_no_wildcard_and_no_cluster_scope(self, plan):
        """No rule uses '*', and the program declares no ClusterRole or ClusterRoleBinding."""
        rules = part(plan, "launcher").inputs["rules"]
        assert [v for r in rules for v in r["apiGroups"] + r["resources"] + r["verbs"] if "*" in v] == []
        assert plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole") == []
        assert plan.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding") == []

    def test_binding_subjects_are_the_worker_and_triggerer(self, plan):
        """The binding names the launcher Role and exactly the chart's worker and triggerer accounts."""
        binding = part(plan, "launcher-binding")
        assert binding.inputs["metadata"] == {"name": "airflow-pod-launcher", "namespace": "airflow-tasks"}
        assert binding.inputs["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "airflow-pod-launcher"}
        assert binding.inputs["subjects"] == LAUNCHERS
        assert [s["name"] for s in LAUNCHERS] == [SERVICE_ACCOUNTS["workers"], SERVICE_ACCOUNTS["triggerer"]]

    def test_no_subject_outside_the_airflow_namespace(self, plan):
        """Every subject is a ServiceAccount of the namespace the Airflow release is installed into."""
        subjects = part(plan, "launcher-binding").inputs["subjects"]
        assert {(s["kind"], s["namespace"]) for s in subjects} == {("ServiceAccount", "airflow")}
        assert plan.outputs["airflowNamespace"] == "airflow"


class TestQuotaAndDefaults:
    """Tests the ResourceQuota and LimitRange from config."""

    @pytest.mark.parametrize("stack_fixture, hard", [
        ("dev_plan", {"requests.cpu": "32", "requests.memory": "128Gi", "limits.memory": "128Gi", "pods": "100"}),
        ("prod_plan", {"requests.cpu": "64", "requests.memory": "256Gi", "limits.memory": "256Gi", "pods": "100"}),
    ], ids=["dev-defaults", "prod-configured"])
    def test_quota(self, request, stack_fixture, hard):
        """Dev gets the defaults; prod sets quotaCpu 64 and quotaMemoryGiB 256 and keeps 100 pods."""
        quota = part(request.getfixturevalue(stack_fixture), "quota")
        assert quota.inputs["metadata"] == {"name": "task-pods", "namespace": "airflow-tasks"}
        assert quota.inputs["spec"] == {"hard": hard}

    def test_default_limits(self, plan):
        """A container that states nothing requests 500m and 512Mi and is capped at 512Mi of memory, no CPU limit."""
        defaults = part(plan, "defaults")
        assert defaults.inputs["metadata"] == {"name": "task-pod-defaults", "namespace": "airflow-tasks"}
        assert defaults.inputs["spec"] == {"limits": DEFAULT_LIMITS}


class TestConfiguredVariant:
    """Tests a stack that renames the namespace and sets every quota and default."""

    TASK_PODS = {"namespace": "batch-pods", "quotaCpu": 8, "quotaMemoryGiB": 24, "quotaPods": 20,
                 "defaultCpuMillicores": 250, "defaultMemoryMiB": 1024}

    @pytest.fixture
    def custom(self, plan_with) -> Plan:
        return plan_with("dev", {"airflow-platform:airflow": airflow_config("dev", taskPods=self.TASK_PODS)})

    def test_every_object_moves_to_the_configured_namespace(self, custom):
        """The namespace is batch-pods, every object is in it, and the stack exports it."""
        assert part(custom, "namespace").inputs["metadata"] == {"name": "batch-pods", "labels": POD_SECURITY}
        namespaces = {r.inputs["metadata"].get("namespace") for r in custom.descendants(component(custom))
                      if r.type != "kubernetes:core/v1:Namespace"}
        assert namespaces == {"batch-pods"}
        assert custom.outputs["taskPodsNamespace"] == "batch-pods"

    def test_quota_and_defaults_follow_config(self, custom):
        """The quota and the container defaults carry the configured numbers with their units."""
        assert part(custom, "quota").inputs["spec"] == {
            "hard": {"requests.cpu": "8", "requests.memory": "24Gi", "limits.memory": "24Gi", "pods": "20"}}
        assert part(custom, "defaults").inputs["spec"] == {"limits": [
            {"type": "Container", "defaultRequest": {"cpu": "250m", "memory": "1024Mi"}, "default": {"memory": "1024Mi"}}]}

    def test_launchers_still_come_from_the_airflow_namespace(self, custom):
        """Renaming the task namespace does not move the subjects: they stay the airflow namespace's accounts."""
        binding = part(custom, "launcher-binding")
        assert binding.inputs["metadata"] == {"name": "airflow-pod-launcher", "namespace": "batch-pods"}
        assert binding.inputs["subjects"] == LAUNCHERS


class TestProvider:
    """Tests that TaskPods talks to the EKS cluster the program built."""

    def test_every_resource_uses_the_cluster_provider(self, plan):
        """All six objects are created through the Cluster component's Kubernetes provider."""
        [provider] = plan.of_type(K8S_PROVIDER)
        assert provider.parent == plan.named(f"airflow-{plan.stack}-cluster").urn
        resources = plan.descendants(component(plan))
        assert len(resources) == 6
        assert [r.name for r in resources if not r.provider.startswith(provider.urn + "::")] == []


class TestChartPodLaunching:
    """Tests that the chart lets nobody launch pods in the airflow namespace unless the KubernetesExecutor needs it."""

    @pytest.mark.parametrize("stack_fixture, env", STACKS, ids=STACK_IDS)
    def test_celery_executor_launches_no_pods_in_airflow(self, request, stack_fixture, env):
        """With the default CeleryExecutor, allowPodLaunching is False: KubernetesPodOperator pods go to airflow-tasks."""
        values = chart_values(request.getfixturevalue(stack_fixture), env)
        assert values["executor"] == "CeleryExecutor"
        assert values["allowPodLaunching"] is False

    def test_kubernetes_executor_may_launch_pods(self, plan_with):
        """With CeleryExecutor,KubernetesExecutor the chart may launch pods, and the task namespace is unchanged."""
        plan = plan_with("dev", {"airflow-platform:airflow": airflow_config("dev", executor="CeleryExecutor,KubernetesExecutor")})
        values = chart_values(plan, "dev")
        assert values["executor"] == "CeleryExecutor,KubernetesExecutor"
        assert values["allowPodLaunching"] is True
        assert part(plan, "launcher-binding").inputs["subjects"] == LAUNCHERS


class TestReservedNamespaces:
    """Tests that the task namespace cannot be one that RBAC, quota and Pod Security labels would damage."""

    @pytest.mark.parametrize("namespace", ["airflow", "keda", "default", "kube-system", "kube-public", "kube-node-lease"])
    def test_refused(self, plan_with, namespace):
        """Sharing Airflow's, KEDA's or a Kubernetes namespace is refused with one sentence."""
        with pytest.raises(ConfigError) as caught:
            plan_with("dev", {"airflow-platform:airflow": airflow_config("dev", taskPods={"namespace": namespace})})
        assert str(caught.value) == (
            "Config key 'airflow-platform:airflow.taskPods.namespace' must be a namespace of its own, not one of airflow, keda, default, "
            f"kube-system, kube-public, kube-node-lease (got \"{namespace}\").")
