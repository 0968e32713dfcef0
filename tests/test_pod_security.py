"""Tests that every pod the platform runs, through a chart or declared by the program, meets the Pod Security Standards'
restricted profile as the API server's PodSecurity admission evaluates it, runs with a read-only root filesystem, states
its requests and a memory limit, and holds a Kubernetes API token only where it calls the API; and that the namespaces
enforce that profile, node-exporter's alone excepted.

The checker below is the restricted level of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the
baseline controls included), rule for rule as the admission plugin implements it (k8s.io/pod-security-admission,
policy/check_*.go) for the Kubernetes versions a cluster of this platform can run (kube-prometheus-stack needs 1.25 or
newer). No maintained Python package evaluates the standards: that Go package is the reference, so the rules are written
out here, each with the version it changed at.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Iterable

import pytest
import yaml

from components import team_roles
from tests.e2e.local_airflow import AIRFLOW_VENV
from tests.rendered import pod as pod_template
from tools import render

# --- The Pod Security Standards, restricted level -------------------------------------------------------------------

RUNTIME_DEFAULT, LOCALHOST = "RuntimeDefault", "Localhost"
# Volume sources the restricted profile allows inline in a pod; anything else (hostPath, nfs, the in-tree cloud disks...)
# is refused.
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
                                "projected", "secret"})
# Baseline: containers may add only these capabilities (restricted narrows it to NET_BIND_SERVICE).
DEFAULT_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                                  "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
# Baseline: the sysctls a pod may set, growing with the version that allowed each.
SAFE_SYSCTLS = {
    (1, 0): {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
             "net.ipv4.ip_unprivileged_port_start"},
    (1, 27): {"net.ipv4.ip_local_reserved_ports"},
    (1, 29): {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"},
    (1, 32): {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"},
    (1, 37): {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"},
}
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _version(version: str) -> tuple[int, int]:
    major, minor = (int(part) for part in version.split(".")[:2])
    if (major, minor) < (1, 25):
        raise ValueError(f"the checker covers Kubernetes 1.25 and newer, not {version}")
    return major, minor


def _containers(spec: dict) -> list[dict]:
    """Every container the admission plugin visits: init, regular, then ephemeral."""
    return [c for field in ("initContainers", "containers", "ephemeralContainers") for c in spec.get(field) or []]


def _context(holder: dict) -> dict:
    return holder.get("securityContext") or {}


def _named(names: list[str]) -> str:
    return ("container " if len(names) == 1 else "containers ") + ", ".join(f"'{n}'" for n in names)


def _whose(pod_level: bool, names: list[str]) -> str:
    return " and ".join([*(["pod"] if pod_level else []), *([_named(names)] if names else [])])


def _host_namespaces(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    shared = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    return [f"hostNamespaces: {', '.join(shared)}"] if shared else []


def _privileged(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    bad = [c["name"] for c in containers if _context(c).get("privileged")]
    return [f"privileged: {_named(bad)} must not set securityContext.privileged=true"] if bad else []


def _host_ports(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    bad = [c["name"] for c in containers if any(p.get("hostPort") for p in c.get("ports") or [])]
    ports = sorted({str(p["hostPort"]) for c in containers for p in c.get("ports") or [] if p.get("hostPort")})
    return [f"hostPorts: {_named(bad)} use hostPort {', '.join(ports)}"] if bad else []


def _app_armor(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    def bad_type(holder: dict) -> bool:
        profile = _context(holder).get("appArmorProfile")
        return profile is not None and profile.get("type") not in (RUNTIME_DEFAULT, LOCALHOST)

    names = [c["name"] for c in containers if bad_type(c)]
    annotations = sorted(f"{key}={value}" for key, value in (meta.get("annotations") or {}).items()
                         if key.startswith(APPARMOR_ANNOTATION_PREFIX) and value and value != "runtime/default"
                         and not value.startswith("localhost/"))
    problems = ([f"appArmorProfile: {_whose(bad_type(spec), names)} must not set an AppArmor profile other than "
                 f"RuntimeDefault or Localhost"] if bad_type(spec) or names else [])
    return problems + ([f"appArmorProfile: annotations {', '.join(annotations)}"] if annotations else [])


def _se_linux(meta: dict, spec: dict, containers: list[dict], version: tuple[int, int]) -> list[str]:
    allowed = {"", "container_t", "container_init_t", "container_kvm_t"} | ({"container_engine_t"} if version >= (1, 31) else set())

    def bad(holder: dict) -> bool:
        options = _context(holder).get("seLinuxOptions")
        return options is not None and (options.get("type", "") not in allowed or bool(options.get("user")) or bool(options.get("role")))

    names = [c["name"] for c in containers if bad(c)]
    return [f"seLinuxOptions: {_whose(bad(spec), names)} set a forbidden SELinux type, user or role"] if bad(spec) or names else []


def _proc_mount(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    # Restricted requires the default /proc masks with or without a user namespace (baseline relaxes that from 1.35).
    bad = [c["name"] for c in containers if _context(c).get("procMount") not in (None, "Default")]
    return [f"procMount: {_named(bad)} must not unmask /proc"] if bad else []


def _sysctls(meta: dict, spec: dict, containers: list[dict], version: tuple[int, int]) -> list[str]:
    safe = set().union(*(names for since, names in SAFE_SYSCTLS.items() if version >= since))
    bad = [s["name"] for s in _context(spec).get("sysctls") or [] if s["name"] not in safe]
    return [f"sysctls: {', '.join(bad)}"] if bad else []


def _windows_host_process(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    def bad(holder: dict) -> bool:
        return bool((_context(holder).get("windowsOptions") or {}).get("hostProcess"))

    names = [c["name"] for c in containers if bad(c)]
    return [f"windowsHostProcess: {_whose(bad(spec), names)} must not set hostProcess=true"] if bad(spec) or names else []


def _host_probes(meta: dict, spec: dict, containers: list[dict], version: tuple[int, int]) -> list[str]:
    """From 1.34: probes and lifecycle handlers may not name a host (the kubelet would connect there, not to the pod)."""
    if version < (1, 34):
        return []

    def hosts(container: dict) -> list[str]:
        handlers = [container.get(p) or {} for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(container.get("lifecycle") or {}).get(h) or {} for h in ("postStart", "preStop")]
        return [(h.get(kind) or {}).get("host") for h in handlers for kind in ("httpGet", "tcpSocket") if (h.get(kind) or {}).get("host")]

    bad = [c["name"] for c in containers if hosts(c)]
    return [f"hostProbesAndHostLifecycle: {_named(bad)} use hosts {', '.join(h for c in containers for h in hosts(c))}"] if bad else []


def _volumes(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    bad = [(v["name"], next((k for k in v if k != "name"), "unknown")) for v in spec.get("volumes") or []
           if not RESTRICTED_VOLUMES & set(v)]
    return [f"restrictedVolumes: {', '.join(f'{name} ({kind})' for name, kind in bad)}"] if bad else []


def _windows(spec: dict) -> bool:
    return (spec.get("os") or {}).get("name") == "windows"


def _privilege_escalation(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    if _windows(spec):
        return []
    bad = [c["name"] for c in containers if _context(c).get("allowPrivilegeEscalation") is not False]
    return [f"allowPrivilegeEscalation: {_named(bad)} must set securityContext.allowPrivilegeEscalation=false"] if bad else []


def _user_namespace(spec: dict, version: tuple[int, int]) -> bool:
    """From 1.35 a pod in its own user namespace (hostUsers: false) may run as root inside it."""
    return version >= (1, 35) and spec.get("hostUsers") is False


def _run_as_non_root(meta: dict, spec: dict, containers: list[dict], version: tuple[int, int]) -> list[str]:
    if _user_namespace(spec, version):
        return []
    pod_level = _context(spec).get("runAsNonRoot")
    explicit = [c["name"] for c in containers if _context(c).get("runAsNonRoot") is False]
    if pod_level is False or explicit:
        return [f"runAsNonRoot: {_whose(pod_level is False, explicit)} must not set securityContext.runAsNonRoot=false"]
    implicit = [c["name"] for c in containers if _context(c).get("runAsNonRoot") is None and pod_level is not True]
    return [f"runAsNonRoot: pod or {_named(implicit)} must set securityContext.runAsNonRoot=true"] if implicit else []


def _run_as_user(meta: dict, spec: dict, containers: list[dict], version: tuple[int, int]) -> list[str]:
    if _user_namespace(spec, version):
        return []
    pod_level = _context(spec).get("runAsUser") == 0
    names = [c["name"] for c in containers if _context(c).get("runAsUser") == 0]
    return [f"runAsUser: {_whose(pod_level, names)} must not set runAsUser=0"] if pod_level or names else []


def _seccomp(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    if _windows(spec):
        return []

    def profile(holder: dict) -> Any:
        chosen = _context(holder).get("seccompProfile")
        return None if chosen is None else chosen.get("type", "")

    pod_level = profile(spec)
    explicit = [c["name"] for c in containers if profile(c) is not None and profile(c) not in (RUNTIME_DEFAULT, LOCALHOST)]
    pod_bad = pod_level is not None and pod_level not in (RUNTIME_DEFAULT, LOCALHOST)
    if pod_bad or explicit:
        return [f"seccompProfile: {_whose(pod_bad, explicit)} must not set a seccomp profile other than RuntimeDefault or Localhost"]
    implicit = [c["name"] for c in containers if profile(c) is None and pod_level is None]
    return [f"seccompProfile: pod or {_named(implicit)} must set securityContext.seccompProfile.type to RuntimeDefault or "
            f"Localhost"] if implicit else []


def _capabilities(meta: dict, spec: dict, containers: list[dict]) -> list[str]:
    if _windows(spec):
        return []
    capabilities = {c["name"]: _context(c).get("capabilities") or {} for c in containers}
    missing = [name for name, caps in capabilities.items() if "ALL" not in (caps.get("drop") or [])]
    adding = [name for name, caps in capabilities.items() if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}]
    added = sorted({cap for caps in capabilities.values() for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"})
    details = ([f"{_named(missing)} must set securityContext.capabilities.drop=[\"ALL\"]"] if missing else [])
    details += [f"{_named(adding)} must not add {', '.join(added)}"] if adding else []
    return [f"capabilities: {'; '.join(details)}"] if details else []


def restricted_violations(pod: dict, version: str) -> list[str]:
    """What the PodSecurity admission plugin at `version` refuses in a pod (or pod template: metadata and spec) under the
    restricted level, one line per check that fails, in the order of the standard's table (baseline controls first)."""
    at = _version(version)
    meta, spec = pod.get("metadata") or {}, pod["spec"]
    containers = _containers(spec)
    return [
        *_host_namespaces(meta, spec, containers), *_privileged(meta, spec, containers), *_host_ports(meta, spec, containers),
        *_app_armor(meta, spec, containers), *_se_linux(meta, spec, containers, at), *_proc_mount(meta, spec, containers),
        *_sysctls(meta, spec, containers, at), *_windows_host_process(meta, spec, containers), *_host_probes(meta, spec, containers, at),
        *_volumes(meta, spec, containers), *_privilege_escalation(meta, spec, containers), *_run_as_non_root(meta, spec, containers, at),
        *_run_as_user(meta, spec, containers, at), *_seccomp(meta, spec, containers), *_capabilities(meta, spec, containers),
    ]


# --- The platform's own rules beside the standard -------------------------------------------------------------------

def writable_root(pod: dict) -> list[str]:
    """Containers (init included) that do not run with a read-only root filesystem."""
    return [c["name"] for c in _containers(pod["spec"]) if _context(c).get("readOnlyRootFilesystem") is not True]


def unsized(pod: dict) -> list[str]:
    """Containers that do not request CPU and memory or are not limited in memory."""
    def sized(container: dict) -> bool:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        return bool(requests.get("cpu")) and bool(requests.get("memory")) and bool(limits.get("memory"))

    return [c["name"] for c in _containers(pod["spec"]) if not sized(c)]


def mounts_api_token(pod: dict, accounts: Iterable[dict]) -> bool:
    """Whether the kubelet mounts a Kubernetes API token into the pod: the pod's automountServiceAccountToken, else its
    service account's, else yes (the API's default)."""
    spec = pod["spec"]
    if spec.get("automountServiceAccountToken") is not None:
        return spec["automountServiceAccountToken"]
    name = spec.get("serviceAccountName") or "default"
    account = next((a for a in accounts if a["metadata"]["name"] == name), {})
    return account.get("automountServiceAccountToken", True)


# --- The checker, against the standard's own cases -------------------------------------------------------------------

def _restricted_pod() -> dict:
    """A pod that meets the restricted profile: non-root, RuntimeDefault, no escalation, no capabilities."""
    def container(name: str) -> dict:
        return {"name": name, "image": "app:1", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}

    return {"metadata": {"name": "app"},
            "spec": {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": RUNTIME_DEFAULT}},
                     "initContainers": [container("init")], "containers": [container("app")],
                     "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "config", "configMap": {"name": "app"}},
                                 {"name": "token", "projected": {"sources": []}}, {"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]}}


def _set(pod: dict, path: str, value: Any) -> dict:
    """Set one field of a pod ("spec.containers.0.securityContext.privileged"); a None value removes it."""
    *parents, last = path.split(".")
    node: Any = pod
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is None:
        node.pop(last)
    else:
        node[last] = value
    return pod


def _changed(path: str, value: Any) -> dict:
    """The restricted pod with one field changed."""
    return _set(_restricted_pod(), path, value)


VIOLATIONS = {
    "host-network": ("spec.hostNetwork", True, "hostNamespaces: hostNetwork=true"),
    "host-pid": ("spec.hostPID", True, "hostNamespaces: hostPID=true"),
    "host-ipc": ("spec.hostIPC", True, "hostNamespaces: hostIPC=true"),
    "privileged": ("spec.containers.0.securityContext.privileged", True,
                   "privileged: container 'app' must not set securityContext.privileged=true"),
    "host-port": ("spec.containers.0.ports", [{"containerPort": 80, "hostPort": 8080}], "hostPorts: container 'app' use hostPort 8080"),
    "apparmor-unconfined": ("spec.securityContext.appArmorProfile", {"type": "Unconfined"},
                            "appArmorProfile: pod must not set an AppArmor profile other than RuntimeDefault or Localhost"),
    "apparmor-annotation": ("metadata.annotations", {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"},
                            "appArmorProfile: annotations container.apparmor.security.beta.kubernetes.io/app=unconfined"),
    "selinux-type": ("spec.initContainers.0.securityContext.seLinuxOptions", {"type": "spc_t"},
                     "seLinuxOptions: container 'init' set a forbidden SELinux type, user or role"),
    "selinux-user": ("spec.securityContext.seLinuxOptions", {"user": "system_u"},
                     "seLinuxOptions: pod set a forbidden SELinux type, user or role"),
    "proc-mount": ("spec.containers.0.securityContext.procMount", "Unmasked", "procMount: container 'app' must not unmask /proc"),
    "unsafe-sysctl": ("spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "sysctls: kernel.msgmax"),
    "windows-host-process": ("spec.containers.0.securityContext.windowsOptions", {"hostProcess": True},
                             "windowsHostProcess: container 'app' must not set hostProcess=true"),
    "host-path": ("spec.volumes", [{"name": "root", "hostPath": {"path": "/"}}], "restrictedVolumes: root (hostPath)"),
    "nfs": ("spec.volumes", [{"name": "share", "nfs": {"server": "nfs", "path": "/"}}], "restrictedVolumes: share (nfs)"),
    "escalation-unset": ("spec.containers.0.securityContext.allowPrivilegeEscalation", None,
                         "allowPrivilegeEscalation: container 'app' must set securityContext.allowPrivilegeEscalation=false"),
    "escalation-allowed": ("spec.initContainers.0.securityContext.allowPrivilegeEscalation", True,
                           "allowPrivilegeEscalation: container 'init' must set securityContext.allowPrivilegeEscalation=false"),
    "non-root-unset": ("spec.securityContext.runAsNonRoot", None,
                       "runAsNonRoot: pod or containers 'init', 'app' must set securityContext.runAsNonRoot=true"),
    "non-root-false": ("spec.containers.0.securityContext.runAsNonRoot", False,
                       "runAsNonRoot: container 'app' must not set securityContext.runAsNonRoot=false"),
    "root-user": ("spec.securityContext.runAsUser", 0, "runAsUser: pod must not set runAsUser=0"),
    "seccomp-unset": ("spec.securityContext.seccompProfile", None,
                      "seccompProfile: pod or containers 'init', 'app' must set securityContext.seccompProfile.type to RuntimeDefault "
                      "or Localhost"),
    "seccomp-unconfined": ("spec.containers.0.securityContext.seccompProfile", {"type": "Unconfined"},
                           "seccompProfile: container 'app' must not set a seccomp profile other than RuntimeDefault or Localhost"),
    "capabilities-kept": ("spec.containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]},
                          "capabilities: container 'app' must set securityContext.capabilities.drop=[\"ALL\"]"),
    "capability-added": ("spec.containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE"]},
                         "capabilities: container 'app' must not add SYS_ADMIN"),
}


def test_a_restricted_pod_passes():
    """A pod with the profile's settings and only configuration, ephemeral and claimed volumes passes every check."""
    assert restricted_violations(_restricted_pod(), "1.33") == []


@pytest.mark.parametrize("path, value, violation", VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_each_control_refuses_what_the_standard_refuses(path, value, violation):
    """One field outside the profile fails exactly its control, in one line naming the holder and what it must do."""
    assert restricted_violations(_changed(path, value), "1.33") == [violation]


ALLOWED = {
    "container-level-settings": [("spec.securityContext.runAsNonRoot", None), ("spec.securityContext.seccompProfile", None),
                                 ("spec.initContainers.0.securityContext.runAsNonRoot", True),
                                 ("spec.containers.0.securityContext.runAsNonRoot", True),
                                 ("spec.initContainers.0.securityContext.seccompProfile", {"type": LOCALHOST, "localhostProfile": "p.json"}),
                                 ("spec.containers.0.securityContext.seccompProfile", {"type": RUNTIME_DEFAULT})],
    "net-bind-service": [("spec.containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})],
    "root-group": [("spec.securityContext.runAsGroup", 0), ("spec.securityContext.fsGroup", 0)],
    "safe-sysctl": [("spec.securityContext.sysctls", [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}])],
    "container-selinux-type": [("spec.securityContext.seLinuxOptions", {"type": "container_t", "level": "s0:c1"})],
    "windows-pod": [("spec.os", {"name": "windows"}), ("spec.securityContext.seccompProfile", None),
                    ("spec.containers.0.securityContext", {}), ("spec.initContainers.0.securityContext", {})],
}


@pytest.mark.parametrize("changes", ALLOWED.values(), ids=ALLOWED.keys())
def test_what_the_standard_allows_passes(changes):
    """What the profile allows passes: per-container settings, NET_BIND_SERVICE, group 0, a safe sysctl, Windows exemptions."""
    pod = _restricted_pod()
    for path, value in changes:
        _set(pod, path, value)
    assert restricted_violations(pod, "1.33") == []


VERSIONED = {
    "probe-host-before-1.34": ("spec.containers.0.livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}}, "1.33", []),
    "probe-host-from-1.34": ("spec.containers.0.livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}}, "1.34",
                             ["hostProbesAndHostLifecycle: container 'app' use hosts 10.0.0.1"]),
    "sysctl-before-1.32": ("spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}], "1.31",
                           ["sysctls: net.ipv4.tcp_rmem"]),
    "sysctl-from-1.32": ("spec.securityContext.sysctls", [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}], "1.32", []),
    "engine-type-before-1.31": ("spec.securityContext.seLinuxOptions", {"type": "container_engine_t"}, "1.30",
                                ["seLinuxOptions: pod set a forbidden SELinux type, user or role"]),
    "engine-type-from-1.31": ("spec.securityContext.seLinuxOptions", {"type": "container_engine_t"}, "1.31", []),
}


@pytest.mark.parametrize("path, value, version, violations", VERSIONED.values(), ids=VERSIONED.keys())
def test_rules_follow_the_clusters_version(path, value, version, violations):
    """A control added or relaxed in a Kubernetes version applies from that version on, as the admission plugin versions it."""
    assert restricted_violations(_changed(path, value), version) == violations


def test_a_user_namespace_may_run_as_root_from_1_35():
    """From 1.35 a pod with hostUsers false may run as uid 0 in its own user namespace; before, it may not."""
    pod = _changed("spec.securityContext.runAsUser", 0)
    pod["spec"]["hostUsers"] = False
    assert restricted_violations(pod, "1.34") == ["runAsUser: pod must not set runAsUser=0"]
    assert restricted_violations(pod, "1.35") == []


def test_versions_the_checker_does_not_cover_are_refused():
    """Below 1.25 (kube-prometheus-stack's floor) the rules differed in ways the checker does not model: it refuses to guess."""
    with pytest.raises(ValueError) as refused:
        restricted_violations(_restricted_pod(), "1.24")
    assert str(refused.value) == "the checker covers Kubernetes 1.25 and newer, not 1.24"


def test_the_platform_rules_beside_the_standard():
    """Read-only root, requests and a memory limit, and the token a pod mounts (its own field, else its account's)."""
    pod = _restricted_pod()
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = True
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "10m", "memory": "8Mi"}, "limits": {"memory": "8Mi"}}
    pod["spec"]["initContainers"][0]["resources"] = {"requests": {"cpu": "10m", "memory": "8Mi"}}
    assert (writable_root(pod), unsized(pod)) == (["init"], ["init"])
    account = {"metadata": {"name": "app"}, "automountServiceAccountToken": False}
    assert mounts_api_token(pod, [account]) is True
    pod["spec"]["serviceAccountName"] = "app"
    assert mounts_api_token(pod, [account]) is False
    pod["spec"]["automountServiceAccountToken"] = True
    assert mounts_api_token(pod, [account]) is True


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
    assert node == {"namespaceOverride": "node-exporter",
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
    image = rendering(variant).cfg.airflow.image
    airflow_image = f"{image.repository}:{image.tag}"
    for key, (template, _, _) in pods(variant).items():
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        for container in _containers(template["spec"]):
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
