"""Chart values for observability (pure functions, no Pulumi): the OpenTelemetry Collector that Airflow sends its
metrics to, and kube-prometheus-stack (Prometheus, Alertmanager, kube-state-metrics, Grafana).
"""

from __future__ import annotations

from typing import Any

from components import sso
from components.alerting import RECEIVER_SECRET, RULE_LABELS, alertmanager_config
from components.charts import KUBE_PROMETHEUS_STACK, OPENTELEMETRY_COLLECTOR
from components.config import PlatformConfig
from components.helm_values import merge_maps
from components.images import image_values
from components.names import POOL_LABEL

NAMESPACE = "monitoring"

COLLECTOR = "otel-collector"
OTLP_HTTP_PORT = 4318
PROMETHEUS_EXPORTER_PORT = 8889
COLLECTOR_ENDPOINT = f"{COLLECTOR}.{NAMESPACE}.svc.cluster.local"

KPS_RELEASE = RULE_LABELS["release"]
GRAFANA_ADMIN_SECRET = "grafana-admin"
# The OIDC client's secret, for Grafana's generic OAuth login (the admin Secret stays: it is the way in when the provider is down).
GRAFANA_SSO_SECRET = "grafana-sso"
DASHBOARD_LABEL = "grafana_dashboard"
ALERTMANAGER_STORAGE_GIB = 5
# node-exporter reads the node's /proc, /sys and mounts through hostPath volumes, in the host's network and PID namespaces,
# which every Pod Security level but privileged refuses: it runs in a namespace of its own, the one exception to the
# restricted profile the other namespaces enforce.
NODE_EXPORTER_NAMESPACE = "node-exporter"

# The restricted profile's container settings, for the charts here that do not set them all: no privilege escalation, no
# capabilities, a read-only root.
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
RUNTIME_DEFAULT = {"seccompProfile": {"type": "RuntimeDefault"}}
# The collector image's user (otel/opentelemetry-collector-contrib runs as 10001); the collector writes nothing to disk.
COLLECTOR_UID = 10001


def _sized(cpu_millicores: int, memory_mib: int, limit_mib: int) -> dict[str, Any]:
    return {"requests": {"cpu": f"{cpu_millicores}m", "memory": f"{memory_mib}Mi"}, "limits": {"memory": f"{limit_mib}Mi"}}


# What the monitoring pods request and may use (none is sized in the stack's config; the charts set nothing). Prometheus
# holds every series of the cluster's few hundred pods in memory, well under its request, the limit leaving room for a
# compaction or a WAL replay; the rest are small Go processes, and the Grafana sidecars Python ones.
SIZES = {
    "prometheus": _sized(250, 2048, 4096),
    "alertmanager": _sized(50, 128, 256),
    "configReloader": _sized(10, 32, 64),      # the operator's reloader sidecar beside Prometheus and Alertmanager
    "operator": _sized(100, 128, 256),
    "admissionJob": _sized(10, 32, 64),        # kube-webhook-certgen: one certificate, one patch
    "grafana": _sized(100, 256, 512),
    "grafanaSidecar": _sized(10, 96, 192),     # k8s-sidecar: writes the labelled ConfigMaps' dashboards and datasources
    "kubeStateMetrics": _sized(50, 128, 256),
    "nodeExporter": _sized(50, 48, 96),
}


def _system_pool() -> dict[str, str]:
    return {POOL_LABEL: "system"}


def otel_values(cfg: PlatformConfig) -> dict[str, Any]:
    """The collector: OTLP/HTTP in, a Prometheus endpoint out, scraped through a ServiceMonitor."""
    closed = {"enabled": False}
    return merge_maps({
        "mode": "deployment",
        "fullnameOverride": COLLECTOR,
        "replicaCount": cfg.monitoring.collector_replicas,
        # Only what Airflow uses: OTLP over HTTP. The chart's other receivers (gRPC, Jaeger, Zipkin) stay closed.
        "ports": {
            "otlp": closed, "jaeger-compact": closed, "jaeger-thrift": closed, "jaeger-grpc": closed, "zipkin": closed,
            "otlp-http": {"enabled": True, "containerPort": OTLP_HTTP_PORT, "servicePort": OTLP_HTTP_PORT, "protocol": "TCP"},
            "prom-metrics": {"enabled": True, "containerPort": PROMETHEUS_EXPORTER_PORT, "servicePort": PROMETHEUS_EXPORTER_PORT, "protocol": "TCP"},
        },
        "config": {
            # Merged over the chart's defaults; the default components Airflow does not use are removed by otel_removals().
            "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}"}}}},
            "exporters": {"prometheus": {
                "endpoint": f"${{env:MY_POD_IP}}:{PROMETHEUS_EXPORTER_PORT}",
                # A series Airflow stops sending disappears after this; the heartbeat alerts count on it.
                "metric_expiration": "5m",
            }},
            "extensions": {"health_check": {"endpoint": "${env:MY_POD_IP}:13133"}},
            "service": {
                "extensions": ["health_check"],
                "pipelines": {
                    "metrics": {"receivers": ["otlp"], "processors": ["memory_limiter", "batch"], "exporters": ["prometheus"]},
                },
            },
        },
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "podSecurityContext": {"runAsUser": COLLECTOR_UID, "runAsGroup": COLLECTOR_UID, "runAsNonRoot": True, **RUNTIME_DEFAULT},
        "securityContext": CONTAINER_SECURITY,
        # OTLP in, Prometheus out: no receiver or processor here reads the Kubernetes API.
        "serviceAccount": {"automountServiceAccountToken": False},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "nodeSelector": _system_pool(),
        # honorLabels: Prometheus keeps the exporter's job and instance (the Airflow process, see process_identity.py)
        # instead of overwriting them with the collector pod's, which would merge every process's series again.
        "serviceMonitor": {"enabled": True, "metricsEndpoints": [{"port": "prom-metrics", "interval": "30s", "honorLabels": True}],
                           # The stack's Prometheus selects ServiceMonitors by its release label.
                           "extraLabels": {"release": KPS_RELEASE}},
    }, image_values(OPENTELEMETRY_COLLECTOR.name, cfg.images.pinned()))


def otel_removals() -> dict[str, Any]:
    """The chart's default collector components Airflow does not use, each set to null, which Helm reads as "delete the
    default": the gRPC, Jaeger and Zipkin receivers (ports open in the pod otherwise), the collector scraping itself, and
    the traces and logs pipelines with the debug exporter they write to. They must reach Helm in a values file: Pulumi's Python SDK
    drops a None inside `values` before the engine sees it (pulumi/pulumi#12178), so the defaults would stay."""
    return {"config": {
        "receivers": {"otlp": {"protocols": {"grpc": None}}, "jaeger": None, "zipkin": None, "prometheus": None},
        "exporters": {"debug": None},
        "service": {"pipelines": {"traces": None, "logs": None}},
    }}


def _volume(storage_class: str, gib: int) -> dict[str, Any]:
    return {"volumeClaimTemplate": {"spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                                             "resources": {"requests": {"storage": f"{gib}Gi"}}}}}


def grafana_ini(cfg: PlatformConfig) -> dict[str, dict[str, Any]]:
    """The grafana.ini sections the platform sets, over the chart's own (Helm merges them key by key): with the entry its
    public URL, which Grafana builds its links and redirects from, and with sso the provider's login."""
    if cfg.entry is None:
        return {}
    # Its session cookie only travels over https (the entry's port 80 only redirects).
    secure = {"security": {"cookie_secure": True}}
    if cfg.sso is None:
        return {"server": {"root_url": f"https://{cfg.entry.grafana_host}"}, **secure}
    return {**sso.grafana_ini(cfg.sso, cfg.entry), **secure}


def _grafana(cfg: PlatformConfig) -> dict[str, Any]:
    grafana: dict[str, Any] = {
        "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
        # The sidecars watch ConfigMaps and Secrets through the Kubernetes API (so the pod keeps the chart's token) and
        # write what they find into their emptyDirs; Grafana writes into its storage emptyDir (/var/lib/grafana) and
        # /tmp, one more. The chart's own settings (uid 472, no escalation, no capabilities) are kept: Helm merges these in.
        "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1"},
                    "resources": SIZES["grafanaSidecar"], "securityContext": {"readOnlyRootFilesystem": True}},
        "securityContext": RUNTIME_DEFAULT,
        "containerSecurityContext": {"readOnlyRootFilesystem": True},
        "extraEmptyDirMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": SIZES["grafana"],
        # The chart's `helm test` pod (a root shell with curl): nothing runs helm test on a Pulumi release.
        "testFramework": {"enabled": False},
        "nodeSelector": _system_pool(),
    }
    ini = grafana_ini(cfg)
    if ini:
        grafana["grafana.ini"] = ini
    if cfg.sso is not None:
        # Grafana reads GF_<SECTION>_<KEY> over grafana.ini: the secret stays out of the ConfigMap and the values.
        grafana["envValueFrom"] = {sso.GRAFANA_CLIENT_SECRET_ENV: {"secretKeyRef": {"name": GRAFANA_SSO_SECRET, "key": sso.CLIENT_SECRET_KEY}}}
    return grafana


def kps_values(cfg: PlatformConfig, storage_class: str) -> dict[str, Any]:
    """kube-prometheus-stack: Prometheus and Alertmanager on encrypted volumes, the platform's routes, Grafana."""
    monitoring = cfg.monitoring
    return merge_maps({
        # EKS runs these control-plane parts itself: they cannot be scraped, and would only raise target-down alerts.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheus": {"prometheusSpec": {
            "replicas": monitoring.prometheus_replicas,
            "retention": f"{monitoring.prometheus_retention_days}d",
            # Keep a margin below the volume, so Prometheus deletes old blocks before the disk fills.
            "retentionSize": f"{monitoring.prometheus_storage_gib * 9 // 10}GiB",
            "storageSpec": _volume(storage_class, monitoring.prometheus_storage_gib),
            "nodeSelector": _system_pool(),
            # The pod keeps the chart's restricted securityContext (uid 1000, RuntimeDefault) and its token: Prometheus
            # discovers its targets through the Kubernetes API. The operator gives its containers a read-only root.
            "resources": SIZES["prometheus"],
        }},
        "alertmanager": {
            "config": alertmanager_config(cfg),
            "alertmanagerSpec": {
                "replicas": monitoring.alertmanager_replicas,
                # Mounted at /etc/alertmanager/secrets/<name>/: the receivers read their credentials from there.
                "secrets": [RECEIVER_SECRET],
                "storage": _volume(storage_class, ALERTMANAGER_STORAGE_GIB),
                "nodeSelector": _system_pool(),
                "resources": SIZES["alertmanager"],
                # Its peers are found by DNS and its config reloaded from files: no call to the Kubernetes API.
                "automountServiceAccountToken": False,
            },
        },
        "grafana": _grafana(cfg),
        "kube-state-metrics": {"nodeSelector": _system_pool(), "resources": SIZES["kubeStateMetrics"]},
        # The chart's node-exporter settings (uid 65534, read-only root, no token) are kept; it can drop the rest too, as it
        # only reads. What it cannot give up (hostNetwork, hostPID, the hostPath volumes) is why it has a namespace of its own.
        "prometheus-node-exporter": {
            "namespaceOverride": NODE_EXPORTER_NAMESPACE,
            "resources": SIZES["nodeExporter"],
            "securityContext": RUNTIME_DEFAULT,
            "containerSecurityContext": CONTAINER_SECURITY,
        },
        # The operator and the Jobs that set up its admission webhook have selectors of their own, empty by default: left
        # so, they land on worker nodes, which scale in under them.
        "prometheusOperator": {
            "nodeSelector": _system_pool(),
            "resources": SIZES["operator"],
            "admissionWebhooks": {"patch": {"nodeSelector": _system_pool(), "resources": SIZES["admissionJob"]}},
            "prometheusConfigReloader": {"resources": SIZES["configReloader"]},
        },
    }, image_values(KUBE_PROMETHEUS_STACK.name, cfg.images.pinned()))


def airflow_metrics_config(cfg: PlatformConfig) -> dict[str, Any]:
    """Airflow's [metrics] section: OTLP/HTTP to the collector, and StatsD off (Airflow would prefer StatsD)."""
    return {
        "otel_on": "True",
        "otel_host": COLLECTOR_ENDPOINT,
        "otel_port": OTLP_HTTP_PORT,
        "otel_prefix": "airflow",
        "otel_interval_milliseconds": cfg.monitoring.metrics_interval_seconds * 1000,
        "otel_ssl_active": "False",
        "statsd_on": "False",
    }
