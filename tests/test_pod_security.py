"""Tests that every pod the platform runs, through a chart or declared by the program, meets the Pod Security Standards'
restricted profile as the API server's PodSecurity admission evaluates it (tools/pod_security.py), runs with a read-only
root filesystem, states its requests and a memory limit, and holds a Kubernetes API token only where it calls the API;
and that the namespaces enforce that profile, node-exporter's alone excepted.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from components import team_roles
from tests.e2e.local_airflow import AIRFLOW_VENV
from tests.rendered import pod as pod_template
from tools import render
from tools.pod_security import containers_of, mounts_api_token, restricted_violations, unsized, writable_root

# --- Every pod the platform runs ------------------------------------------------------------------------------------

POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
PROGRAM = "program"  # the objects the program declares itself, beside the releases
TEAM_ROLES = "airflow-team-roles"  # the team-roles Job, whose name ends in a digest of its script
# Every pod template that reaches the cluster of a dev or prod stack, as "<release>/<kind>/<name>", with the variants that
# run it: the in-cluster Redis broker without ElastiCache (dev), PgBouncer in production.
BOTH, DEV, PROD = ("dev", "prod"), ("dev",), ("prod",)
POD_TEMPLATES = {
    "airflow/Deployment/airflow-api-server": BOTH, "airflow/Deployment/airflow-dag-processor": BOTH,
    "airflow/Deployment/airflow-scheduler": BOTH, "airflow/Deployment/airflow-triggerer": BOTH,
    "airflow/Deployment/airflow-worker": BOTH, "airflow/CronJob/airflow-database-cleanup": BOTH, "airflow/Job/airflow-create-user": BOTH,
    "airflow/Job/airflow-run-airflow-migrations": BOTH, "airflow/StatefulSet/airflow-redis": DEV, "airflow/Deployment/airflow-pgbouncer": PROD,
    "karpenter/Deployment/karpenter": BOTH,
    "keda/Deployment/keda-operator": BOTH, "keda/Deployment/keda-operator-metrics-apiserver": BOTH,
    "keda/Deployment/keda-admission-webhooks": BOTH,
    "aws-load-balancer-controller/Deployment/aws-load-balancer-controller": BOTH,
    "kube-prometheus-stack/Deployment/kube-prometheus-stack-operator": BOTH,
    "kube-prometheus-stack/Job/kube-prometheus-stack-admission-create": BOTH,
    "kube-prometheus-stack/Job/kube-prometheus-stack-admission-patch": BOTH,
    "otel-collector/Deployment/otel-collector": BOTH,
    f"{PROGRAM}/Job/{TEAM_ROLES}": BOTH, f"{PROGRAM}/Deployment/airflow-task-metrics": BOTH,
}
# kube-prometheus-stack's subcharts, which ../shared/charts lacks (the renders leave them out and say so): their pods, checked
# like the others whenever a located chart carries them, and otherwise through the values that shape them (below).
SUBCHART_PODS = {
    "grafana 12.11.1": "kube-prometheus-stack/Deployment/kube-prometheus-stack-grafana",
    "kube-state-metrics 8.4.0": "kube-prometheus-stack/Deployment/kube-prometheus-stack-kube-state-metrics",
    "prometheus-node-exporter 4.56.1": "kube-prometheus-stack/DaemonSet/kube-prometheus-stack-prometheus-node-exporter",
}
NODE_EXPORTER = SUBCHART_PODS["prometheus-node-exporter 4.56.1"]
# The pods that may hold a Kubernetes API token, and why each calls the API. Every other pod runs without one
# (automountServiceAccountToken false): a token lets whoever breaks into a pod act as its service account. An IRSA role
# does not need it: EKS's pod identity webhook mounts a web identity token of its own (audience sts.amazonaws.com, a
# projected volume) into the pods of an annotated service account whatever their automountServiceAccountToken.
API_CALLERS = {
    "airflow/Deployment/airflow-worker": "its KubernetesPodOperator tasks create, watch, read and delete pods in the task namespace",
    "airflow/Deployment/airflow-triggerer": "it watches the pods of deferred KubernetesPodOperator tasks",
    "karpenter/Deployment/karpenter": "it watches pending pods and nodes, and creates and deletes NodeClaims and nodes",
    "keda/Deployment/keda-operator": "it turns ScaledObjects into HPAs and reads the Secrets their triggers name",
    "keda/Deployment/keda-operator-metrics-apiserver": "it serves the external metrics API, authenticating its callers through the API",
    "keda/Deployment/keda-admission-webhooks": "it checks a ScaledObject against the HPAs and workloads it would target",
    "aws-load-balancer-controller/Deployment/aws-load-balancer-controller": "it watches TargetGroupBindings, Services, Ingresses, pods",
    "kube-prometheus-stack/Deployment/kube-prometheus-stack-operator": "it turns Prometheus, Alertmanager and monitors into StatefulSets and Secrets",
    "kube-prometheus-stack/Job/kube-prometheus-stack-admission-create": "it creates the admission webhook's certificate Secret",
    "kube-prometheus-stack/Job/kube-prometheus-stack-admission-patch": "it writes that certificate's CA into the webhook configurations",
    SUBCHART_PODS["grafana 12.11.1"]: "its sidecars watch the dashboard and datasource ConfigMaps and Secrets",
    SUBCHART_PODS["kube-state-metrics 8.4.0"]: "it lists and watches every object it reports on",
    # With the KubernetesExecutor (not in dev or prod) the scheduler and the API server join them; see the test below.
}
VARIANTS = ("dev", "prod")
CASES = [(variant, key) for key, variants in POD_TEMPLATES.items() for variant in variants]
IDS = [f"{variant}:{key}" for variant, key in CASES]


def _key(release: str, obj: dict, cfg) -> str:
    name = obj["metadata"]["name"]
    if release == PROGRAM and name == team_roles.job_name([team.name for team in cfg.teams]):
        name = TEAM_ROLES
    return f"{release}/{obj['kind']}/{name}"


def _pods(result) -> dict[str, tuple[dict, list[dict], str]]:
    """Every pod-bearing object that reaches the cluster, by key: its pod template, the service accounts beside it, and the
    namespace its pods run in."""
    sources = [(name, release.objects, release.namespace) for name, release in result.releases.items()]
    sources.append((PROGRAM, render.program_objects(result.plan), None))
    found = {}
    for release, objects, namespace in sources:
        accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
        for obj in objects:
            if obj["kind"] in POD_KINDS:
                template = obj if obj["kind"] == "Pod" else pod_template(obj)
                found[_key(release, obj, result.cfg)] = (template, accounts, obj["metadata"].get("namespace") or namespace)
    return found


@pytest.fixture(scope="module")
def pods(rendering):
    """pods(variant): that variant's pod-bearing objects (see _pods), the renders' and the program's."""
    cache: dict[str, dict] = {}

    def get(variant: str) -> dict:
        if variant not in cache:
            cache[variant] = _pods(rendering(variant))
        return cache[variant]

    return get


def _cluster_version(result) -> str:
    return result.cfg.cluster.kubernetes_version


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_template_is_listed(rendering, pods, variant):
    """The pods checked here are all that reach the cluster: the renders', the program's, and the subcharts' when rendered."""
    omitted = rendering(variant).releases["kube-prometheus-stack"].omitted
    expected = {key for key, variants in POD_TEMPLATES.items() if variant in variants}
    expected |= {key for subchart, key in SUBCHART_PODS.items() if subchart not in omitted}
    assert sorted(pods(variant)) == sorted(expected)


@pytest.mark.parametrize("variant, key", CASES, ids=IDS)
def test_pod_meets_the_restricted_profile(rendering, pods, variant, key):
    """The pod would be admitted by a namespace that enforces restricted, at the cluster's Kubernetes version."""
    template, _, _ = pods(variant)[key]
    assert restricted_violations(template, _cluster_version(rendering(variant))) == []


@pytest.mark.parametrize("variant, key", CASES, ids=IDS)
def test_pod_runs_with_a_read_only_root(pods, variant, key):
    """Every container, init containers included, runs with a read-only root filesystem (what it writes goes to a volume)."""
    template, _, _ = pods(variant)[key]
    assert writable_root(template) == []


@pytest.mark.parametrize("variant, key", CASES, ids=IDS)
def test_pod_requests_cpu_and_memory_and_is_limited_in_memory(pods, variant, key):
    """Every container states what it needs (so the scheduler places it and a quota counts it) and is bounded in memory."""
    template, _, _ = pods(variant)[key]
    assert unsized(template) == []


@pytest.mark.parametrize("variant, key", CASES, ids=IDS)
def test_pod_holds_an_api_token_only_if_it_calls_the_api(pods, variant, key):
    """A pod mounts a Kubernetes API token exactly when it is one of API_CALLERS."""
    template, accounts, _ = pods(variant)[key]
    assert mounts_api_token(template, accounts) is (key in API_CALLERS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pods_run_where_restricted_is_enforced(rendering, pods, variant):
    """Every pod lands where restricted is enforced, but node-exporter's and the load balancer controller's in kube-system."""
    labels = {r.inputs["metadata"]["name"]: r.inputs["metadata"].get("labels", {})
              for r in rendering(variant).plan.of_type("kubernetes:core/v1:Namespace")}
    enforced = {key: labels.get(namespace, {}).get("pod-security.kubernetes.io/enforce", "kube-system" if namespace == "kube-system" else None)
                for key, (_, _, namespace) in pods(variant).items()}
    assert {key: level for key, level in enforced.items() if level != "restricted"} == {
        "aws-load-balancer-controller/Deployment/aws-load-balancer-controller": "kube-system",
        **({NODE_EXPORTER: "privileged"} if NODE_EXPORTER in enforced else {})}


def test_namespaces_enforce_the_restricted_profile(prod_plan):
    """Every namespace the program creates enforces restricted, but node-exporter's, which admits privileged pods."""
    namespaces = {r.inputs["metadata"]["name"]: {k: v for k, v in r.inputs["metadata"].get("labels", {}).items() if k.startswith("pod-security")}
                  for r in prod_plan.of_type("kubernetes:core/v1:Namespace")}
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    assert namespaces == {"airflow": restricted, "airflow-tasks": restricted, "karpenter": restricted, "keda": restricted,
                          "monitoring": restricted, "node-exporter": {"pod-security.kubernetes.io/enforce": "privileged"}}


@pytest.mark.parametrize("variant", VARIANTS)
def test_subchart_pods_meet_the_rules_when_rendered(rendering, pods, variant):
    """Subchart pods a located chart carries pass every check, node-exporter's failing only its host access; the rest are omitted."""
    result = rendering(variant)
    rendered = {subchart: key for subchart, key in SUBCHART_PODS.items() if key in pods(variant)}
    assert sorted(result.releases["kube-prometheus-stack"].omitted + tuple(rendered)) == sorted(SUBCHART_PODS)
    for key in rendered.values():
        template, accounts, namespace = pods(variant)[key]
        host_access = ["hostNamespaces: hostNetwork=true, hostPID=true", "restrictedVolumes: proc (hostPath), sys (hostPath), root (hostPath)"]
        assert restricted_violations(template, _cluster_version(result)) == (host_access if key == NODE_EXPORTER else [])
        assert (writable_root(template), unsized(template), mounts_api_token(template, accounts)) == ([], [], key in API_CALLERS)
        assert namespace == ("node-exporter" if key == NODE_EXPORTER else "monitoring")


def _stack_values(result) -> dict:
    [stack] = [r for r in result.plan.of_type(render.RELEASE) if r.inputs["name"] == "kube-prometheus-stack"]
    return render.release_values(stack.inputs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_subchart_values_complete_the_restricted_profile(rendering, variant):
    """The values the stack hands the subcharts complete their own restricted defaults, and move node-exporter to its namespace."""
    # The subcharts' own defaults meet the rest of the profile (grafana 12.11.1: uid 472, no escalation, no capabilities,
    # RuntimeDefault per container; kube-state-metrics 8.4.0: all of it; node-exporter 4.56.1: uid 65534, a read-only root,
    # no token), and prometheus-node-exporter.namespaceOverride is what the subchart's templates read as their namespace.
    values = _stack_values(rendering(variant))
    grafana, state, node = values["grafana"], values["kube-state-metrics"], values["prometheus-node-exporter"]
    sized = {"requests": {"cpu": "10m", "memory": "96Mi"}, "limits": {"memory": "192Mi"}}
    assert (grafana["securityContext"], grafana["containerSecurityContext"], grafana["extraEmptyDirMounts"]) == (
        {"seccompProfile": {"type": "RuntimeDefault"}}, {"readOnlyRootFilesystem": True}, [{"name": "tmp", "mountPath": "/tmp"}])
    assert (grafana["sidecar"]["securityContext"], grafana["sidecar"]["resources"]) == ({"readOnlyRootFilesystem": True}, sized)
    assert grafana["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert "automountServiceAccountToken" not in grafana  # the sidecars call the API: the chart's token stays
    assert grafana["testFramework"] == {"enabled": False}  # no `helm test` pod
    assert state["resources"] == {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    assert {key: value for key, value in node.items() if key != "image"} == {"namespaceOverride": "node-exporter",
                    "resources": {"requests": {"cpu": "50m", "memory": "48Mi"}, "limits": {"memory": "96Mi"}},
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containerSecurityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                                 "readOnlyRootFilesystem": True}}


# What prometheus-operator v0.93 (kube-prometheus-stack 88.5.3's) gives every container of the StatefulSets it makes from a
# Prometheus or an Alertmanager (pkg/prometheus/server/statefulset.go, pkg/alertmanager/statefulset.go,
# pkg/operator/config_reloader.go): the pod-level settings and the sizes come from the resource's spec.
OPERATOR_CONTAINERS = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind, main", [("Prometheus", "prometheus"), ("Alertmanager", "alertmanager")], ids=["prometheus", "alertmanager"])
def test_operator_made_pods_are_restricted(rendering, variant, kind, main):
    """The pods the operator makes from Prometheus and Alertmanager are restricted and sized; only Prometheus keeps a token."""
    result = rendering(variant)
    [resource] = result.releases["kube-prometheus-stack"].of_kind(kind)
    spec = resource["spec"]
    template = {"spec": {"securityContext": spec["securityContext"],
                         "initContainers": [{"name": "init-config-reloader", "securityContext": OPERATOR_CONTAINERS}],
                         "containers": [{"name": main, "securityContext": OPERATOR_CONTAINERS, "resources": spec["resources"]},
                                        {"name": "config-reloader", "securityContext": OPERATOR_CONTAINERS}]}}
    assert restricted_violations(template, _cluster_version(result)) == []
    assert unsized({"spec": {"containers": template["spec"]["containers"][:1]}}) == []
    assert spec.get("automountServiceAccountToken", True) is (kind == "Prometheus")
    operator = result.releases["kube-prometheus-stack"].named("Deployment", "kube-prometheus-stack-operator")
    arguments = pod_template(operator)["spec"]["containers"][0]["args"]
    assert [a for a in arguments if a.startswith("--config-reloader-") and "-cpu-limit" not in a] == [
        "--config-reloader-cpu-request=10m", "--config-reloader-memory-request=32Mi", "--config-reloader-memory-limit=64Mi"]


def test_the_kubernetes_executor_gives_its_launchers_tokens_and_its_pods_the_profile(rendering):
    """With the KubernetesExecutor the scheduler and API server keep tokens, and its task pods meet the same rules."""
    result = rendering("prod-celery-and-kubernetes")
    release = result.releases["airflow"]
    accounts = release.of_kind("ServiceAccount")
    tokens = {key.split("/")[-1]: mounts_api_token(template, accounts) for key, (template, _, _) in _pods(result).items()
              if key.split("/")[-1] in ("airflow-scheduler", "airflow-api-server", "airflow-dag-processor")}
    assert tokens == {"airflow-scheduler": True, "airflow-api-server": True, "airflow-dag-processor": False}
    assert [s["name"] for s in release.named("RoleBinding", "airflow-pod-log-reader-rolebinding")["subjects"]] == ["airflow-api-server"]
    task_pod = yaml.safe_load(release.named("ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    assert restricted_violations(task_pod, _cluster_version(result)) == []
    assert (writable_root(task_pod), unsized(task_pod), task_pod["spec"]["serviceAccountName"]) == ([], [], "airflow-worker")


@pytest.mark.parametrize("variant", VARIANTS)
def test_airflow_writes_only_to_its_emptydirs(rendering, pods, variant):
    """Every Airflow-image container has /tmp on an emptyDir, and the log writers $AIRFLOW_HOME/logs too."""
    writers = {"airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"}
    airflow_image = rendering(variant).cfg.images.pinned()["airflow"].reference
    for key, (template, _, _) in pods(variant).items():
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for container in containers_of(template["spec"]):
            if container["image"] != airflow_image:
                continue
            emptydirs = {m["mountPath"] for m in container.get("volumeMounts", []) if "emptyDir" in volumes[m["name"]]}
            logs = key.split("/")[-1] in writers and container["name"] != "wait-for-airflow-migrations"
            assert emptydirs >= ({"/tmp", "/opt/airflow/logs"} if logs else {"/tmp"}), (key, container["name"])


# Builds the pods of two KubernetesPodOperator tasks in the task namespace, as the cncf.kubernetes provider does before every
# launch (the pod_mutation_hook of the rendered airflow_local_settings.py applied), and prints each as the API server gets it.
TASK_POD_PROBE = """
import json
from kubernetes.client import ApiClient, models as k8s
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

plain = KubernetesPodOperator(task_id="load", name="load", image="example/loader:1", namespace="airflow-tasks", do_xcom_push=True)
own_profile = k8s.V1SeccompProfile(type="Localhost", localhost_profile="p.json")
own_capabilities = k8s.V1Capabilities(drop=["ALL"], add=["NET_BIND_SERVICE"])
chosen = KubernetesPodOperator(task_id="own", name="own", image="example/root-image:1", namespace="airflow-tasks",
                               security_context=k8s.V1PodSecurityContext(run_as_user=1000, seccomp_profile=own_profile),
                               container_security_context=k8s.V1SecurityContext(capabilities=own_capabilities))
for operator in (plain, chosen):
    print(json.dumps(ApiClient().sanitize_for_serialization(operator.build_pod_request_obj())))
"""
# Loading a kubeconfig contacts no server: enough for the operator to build its pods.
KUBECONFIG = {"apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
              "clusters": [{"name": "stand-in", "cluster": {"server": "https://127.0.0.1:6443"}}],
              "users": [{"name": "stand-in", "user": {}}],
              "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}]}


def test_task_pods_are_made_restricted(rendering, tmp_path):
    """A KubernetesPodOperator pod of the task namespace meets the profile, its XCom sidecar as nobody; a DAG's own settings stay."""
    home = tmp_path / "airflow"
    (home / "config").mkdir(parents=True)
    settings = rendering("prod").releases["airflow"].named("ConfigMap", "airflow-config")["data"]["airflow_local_settings.py"]
    (home / "config" / "airflow_local_settings.py").write_text(settings)
    (tmp_path / "kubeconfig").write_text(json.dumps(KUBECONFIG))
    connection = {"conn_type": "kubernetes", "extra": {"in_cluster": False, "kube_config_path": str(tmp_path / "kubeconfig")}}
    env = {"PATH": f"{AIRFLOW_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(tmp_path), "AIRFLOW_HOME": str(home),
           "AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps(connection), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    python = AIRFLOW_VENV / "bin" / "python"
    assert python.exists(), f"{AIRFLOW_VENV} is missing: `make test` installs it from requirements-e2e.txt"
    result = subprocess.run([str(python), "-c", TASK_POD_PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    plain, chosen = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert restricted_violations(plain, "1.33") == []
    [sidecar] = [c for c in plain["spec"]["containers"] if c["name"] == "airflow-xcom-sidecar"]
    assert sidecar["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsUser": 65534}
    assert plain["spec"]["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert restricted_violations(chosen, "1.33") == []
    assert chosen["spec"]["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000,
                                                 "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}
    assert chosen["spec"]["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False,
                                                                  "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}
