"""The Pod Security Standards' restricted level as the API server's PodSecurity admission evaluates it, and the
platform's own rules beside it (a read-only root, requests and a memory limit, an API token only where a pod calls
the API).

The rules of https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the baseline controls included),
rule for rule as the admission plugin implements them (k8s.io/pod-security-admission, policy/check_*.go) for the
Kubernetes versions a cluster of this platform can run (kube-prometheus-stack needs 1.25 or newer). No maintained
Python package evaluates the standards: that Go package is the reference, so the rules are written out here, each with
the version it changed at. tests/test_pod_security_checker.py holds the standard's own cases.
"""

from __future__ import annotations

from typing import Any, Iterable

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


def containers_of(spec: dict) -> list[dict]:
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
    containers = containers_of(spec)
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
    return [c["name"] for c in containers_of(pod["spec"]) if _context(c).get("readOnlyRootFilesystem") is not True]


def unsized(pod: dict) -> list[str]:
    """Containers that do not request CPU and memory or are not limited in memory."""
    def sized(container: dict) -> bool:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        return bool(requests.get("cpu")) and bool(requests.get("memory")) and bool(limits.get("memory"))

    return [c["name"] for c in containers_of(pod["spec"]) if not sized(c)]


def mounts_api_token(pod: dict, accounts: Iterable[dict]) -> bool:
    """Whether the kubelet mounts a Kubernetes API token into the pod: the pod's automountServiceAccountToken, else its
    service account's, else yes (the API's default)."""
    spec = pod["spec"]
    if spec.get("automountServiceAccountToken") is not None:
        return spec["automountServiceAccountToken"]
    name = spec.get("serviceAccountName") or "default"
    account = next((a for a in accounts if a["metadata"]["name"] == name), {})
    return account.get("automountServiceAccountToken", True)
