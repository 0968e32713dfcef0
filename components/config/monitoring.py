"""The `monitoring` key: metrics collection and storage."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from components.config.model import Model


class MonitoringConfig(Model):
    """Metrics: the OTEL collector Airflow sends to, and kube-prometheus-stack."""

    prometheus_retention_days: int = Field(15, ge=1, le=365, description="Days Prometheus keeps samples.")
    prometheus_storage_gib: int = Field(50, ge=10, le=16_384, alias="prometheusStorageGiB", description="Prometheus volume (gp3, encrypted).")
    prometheus_replicas: Optional[int] = Field(None, ge=1, le=3, description="Prometheus replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    alertmanager_replicas: Optional[int] = Field(None, ge=1, le=5, description="Alertmanager replicas (they gossip to deduplicate).",
                                                 json_schema_extra={"defaultText": "2 in production, else 1"})
    collector_replicas: Optional[int] = Field(None, ge=1, le=10, description="OTEL collector replicas.", json_schema_extra={"defaultText": "2 in production, else 1"})
    metrics_interval_seconds: int = Field(30, ge=5, le=300, description="How often Airflow exports its metrics (otel_interval_milliseconds).")
