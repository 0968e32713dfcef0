"""Tests the Pod Security Standards checker (tools/pod_security.py) against the standard's own cases: each control refuses
what the restricted level refuses, allows what it allows, and follows the cluster's version."""

from __future__ import annotations

from typing import Any

import pytest

from tools.pod_security import LOCALHOST, RUNTIME_DEFAULT, mounts_api_token, restricted_violations, unsized, writable_root

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
