"""The task metrics exporter's Deployment: components/task_metrics_exporter.py, shipped in a ConfigMap and run with the
Airflow image, reading the metadata DB through the same Secret as Airflow and sending OTLP to the collector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import task_metrics_exporter as exporter
from components.airflow_values import AIRFLOW_UID, SECRETS, TMP, TMP_PATH
from components.config import PlatformConfig
from components.names import AIRFLOW_NAMESPACE, POOL_LABEL
from components.observability_values import COLLECTOR_ENDPOINT, OTLP_HTTP_PORT

NAME = exporter.SERVICE_NAME
MOUNT_DIRECTORY = "/opt/airflow-platform"
SCRIPT = Path(exporter.__file__).name
# The end-to-end suite checks the exporter's peak resident memory stays under the request (README, "Figures").
MEMORY_REQUEST, MEMORY_LIMIT = "128Mi", "256Mi"


def deployment_spec(cfg: PlatformConfig, config_map: str) -> dict[str, Any]:
    """One replica (the gauges are read off the DB, a second would only repeat them), restricted, on the system pool."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "airflow-platform"}
    env = [
        {"name": exporter.DB_URL_ENV, "valueFrom": {"secretKeyRef": {"name": SECRETS.metadata, "key": "connection"}}},
        {"name": exporter.ENDPOINT_ENV, "value": f"http://{COLLECTOR_ENDPOINT}:{OTLP_HTTP_PORT}/v1/metrics"},
        {"name": exporter.TEAMS_ENV, "value": ",".join(team.name for team in cfg.teams)},
        {"name": exporter.INTERVAL_ENV, "value": str(cfg.monitoring.metrics_interval_seconds)},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    return {
        "replicas": 1,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "automountServiceAccountToken": False,
                "nodeSelector": {POOL_LABEL: "system"},
                "securityContext": {"runAsUser": AIRFLOW_UID, "runAsGroup": 0, "runAsNonRoot": True,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "exporter",
                    "image": cfg.images.pinned()["airflow"].reference,
                    "command": ["python", f"{MOUNT_DIRECTORY}/{SCRIPT}"],
                    "env": env,
                    "resources": {"requests": {"cpu": "50m", "memory": MEMORY_REQUEST}, "limits": {"memory": MEMORY_LIMIT}},
                    # The root is read-only: a library's scratch file goes to /tmp, an emptyDir as in every Airflow pod.
                    "volumeMounts": [{"name": "script", "mountPath": MOUNT_DIRECTORY, "readOnly": True}, {"name": TMP, "mountPath": TMP_PATH}],
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                        "capabilities": {"drop": ["ALL"]}},
                }],
                "volumes": [{"name": "script", "configMap": {"name": config_map}}, {"name": TMP, "emptyDir": {}}],
            },
        },
    }


@dataclass
class TaskMetricsArgs:
    config: PlatformConfig
    namespace: pulumi.Input[str] = AIRFLOW_NAMESPACE


class TaskMetrics(pulumi.ComponentResource):
    def __init__(self, name: str, args: TaskMetricsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:TaskMetrics", name, None, opts)
        script = k8s.core.v1.ConfigMap(
            f"{name}-script", metadata={"name": NAME, "namespace": args.namespace},
            data={SCRIPT: Path(exporter.__file__).read_text()}, opts=pulumi.ResourceOptions(parent=self))
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata={"name": NAME, "namespace": args.namespace, "labels": {"app.kubernetes.io/name": NAME}},
            spec=deployment_spec(args.config, NAME), opts=pulumi.ResourceOptions(parent=self, depends_on=[script]))
        self.register_outputs({"deployment": self.deployment.metadata["name"]})
