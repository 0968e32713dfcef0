"""Observability: the OpenTelemetry Collector Airflow sends metrics to, kube-prometheus-stack with the platform's
alert routes and the Airflow dashboard, the Airflow alert rules, and the Secret Alertmanager's receivers read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml

from components import alerting, sso
from components.config import PlatformConfig
from components.names import READINESS_GATE_LABELS
from components.charts import KUBE_PROMETHEUS_STACK, OPENTELEMETRY_COLLECTOR, release_source
from components.observability_values import (DASHBOARD_LABEL, GRAFANA_ADMIN_SECRET, GRAFANA_SSO_SECRET, KPS_RELEASE, NAMESPACE,
                                             NODE_EXPORTER_NAMESPACE, kps_values, otel_removals, otel_values)
from components.task_pods import POD_SECURITY_LABELS

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboards" / "airflow.json"
# node-exporter's namespace, and nothing else, admits privileged pods: it shares the host's network and process namespaces
# and mounts the host's /proc, /sys and / (read-only, as uid 65534, without capabilities), which even baseline refuses.
# Only the stack's release puts pods there (its DaemonSet, through prometheus-node-exporter.namespaceOverride).
NODE_EXPORTER_POD_SECURITY = {"pod-security.kubernetes.io/enforce": "privileged"}


@dataclass
class ObservabilityArgs:
    config: PlatformConfig
    provider: k8s.Provider
    storage_class: str
    # What the stack's volumes need first: the storage class (and so the EBS CSI driver behind it).
    depends_on: Sequence[pulumi.Resource] = ()


class Observability(pulumi.ComponentResource):
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ObservabilityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Observability", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        labels = {**POD_SECURITY_LABELS, **(READINESS_GATE_LABELS if cfg.entry is not None else {})}
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE, "labels": labels}, opts=child)
        self.namespace = namespace.metadata["name"]
        node_exporter = k8s.core.v1.Namespace(f"{name}-node-exporter-namespace",
                                              metadata={"name": NODE_EXPORTER_NAMESPACE, "labels": NODE_EXPORTER_POD_SECURITY}, opts=child)
        in_namespace = {"namespace": self.namespace}

        # Always created, possibly empty: Alertmanager's pods mount it and would not start without it.
        receivers = k8s.core.v1.Secret(
            f"{name}-receivers", metadata={"name": alerting.RECEIVER_SECRET, **in_namespace}, type="Opaque",
            string_data={key: pulumi.Output.secret(getattr(cfg, attr).get_secret_value())
                         for attr, key in alerting.receiver_secret_keys(cfg).items()},
            opts=child)
        password = random.RandomPassword(f"{name}-grafana-password", length=32, special=False, opts=child)
        grafana_admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin", metadata={"name": GRAFANA_ADMIN_SECRET, **in_namespace}, type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password.result}, opts=child)
        grafana_secrets = [grafana_admin]
        if cfg.sso is not None and cfg.sso_client_secret is not None:
            # Grafana's half of the OIDC client: its pod reads the secret into GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET.
            grafana_secrets.append(k8s.core.v1.Secret(
                f"{name}-grafana-sso", metadata={"name": GRAFANA_SSO_SECRET, **in_namespace}, type="Opaque",
                string_data={sso.CLIENT_SECRET_KEY: pulumi.Output.secret(cfg.sso_client_secret.get_secret_value())}, opts=child))
        dashboard = k8s.core.v1.ConfigMap(
            f"{name}-dashboard", metadata={"name": "airflow-platform-dashboard", **in_namespace, "labels": {DASHBOARD_LABEL: "1"}},
            data={DASHBOARD.name: DASHBOARD.read_text()}, opts=child)

        self.stack = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack", name=KPS_RELEASE,
            **release_source(KUBE_PROMETHEUS_STACK, cfg.chart_repositories.of(KUBE_PROMETHEUS_STACK)), namespace=self.namespace,
            values=kps_values(cfg, args.storage_class), max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[receivers, *grafana_secrets, dashboard, node_exporter, *args.depends_on]))
        # The collector's ServiceMonitor and the PrometheusRule are Prometheus operator resources: the stack brings their CRDs.
        self.collector = k8s.helm.v3.Release(
            f"{name}-otel-collector", name="otel-collector",
            **release_source(OPENTELEMETRY_COLLECTOR, cfg.chart_repositories.of(OPENTELEMETRY_COLLECTOR)), namespace=self.namespace,
            value_yaml_files=[pulumi.StringAsset(yaml.safe_dump(otel_removals()))], values=otel_values(cfg), max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.stack]))
        rule = alerting.prometheus_rule(cfg, NAMESPACE)
        k8s.apiextensions.CustomResource(
            f"{name}-airflow-rules", api_version=rule["apiVersion"], kind=rule["kind"],
            metadata={**rule["metadata"], "namespace": self.namespace}, spec=rule["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.stack]))
        self.register_outputs({"namespace": self.namespace})
