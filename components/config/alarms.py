"""The `alarms` key: the metadata DB alarm thresholds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.config.fields import matching
from components.config.model import Model


class AlarmsConfig(Model):
    cpu_percent: int = Field(80, ge=1, le=100, description="DB CPU utilisation that raises an alarm.")
    free_storage_gib: int = Field(5, ge=1, le=65536, alias="freeStorageGiB", description="DB free storage below which an alarm is raised (below allocatedStorageGiB).")
    connections_percent: int = Field(80, ge=1, le=100, description="DB connections, as a percentage of the class's max_connections, that raise an alarm.")
    freeable_memory_mib: int = Field(256, ge=16, le=1_048_576, alias="freeableMemoryMiB", description="DB freeable memory below which an alarm is raised (below the class's memory).")
    read_latency_ms: int = Field(20, ge=1, le=10_000, description="DB read latency that raises an alarm.")
    write_latency_ms: int = Field(20, ge=1, le=10_000, description="DB write latency that raises an alarm.")
    period_seconds: Literal[60, 300] = Field(60, description="Period of each alarm's datapoints.")
    evaluation_periods: int = Field(5, ge=1, le=60, description="Consecutive breaching periods before an alarm fires.")
    notifications_enabled: bool = Field(True, description="Whether the alarms notify the topic; false keeps a test stack's alarms quiet.")
    email_subscriptions: list[Annotated[str, matching(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", "must be an e-mail address")]] = Field(
        default_factory=list, description="E-mail addresses subscribed to the alarm topic (each confirms by mail). "
                                          "For a paging service set the secret alarmWebhookUrl.")
