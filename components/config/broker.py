"""The `broker` key: the Celery broker."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from components.config.fields import matching
from components.config.model import Model


class BrokerConfig(Model):
    mode: Optional[Literal["elasticache", "in-cluster"]] = Field(
        None, description="elasticache: a managed replication group that survives a zone loss; in-cluster: the Airflow chart's Redis (not allowed in production).",
        json_schema_extra={"defaultText": "elasticache in production, else in-cluster"})
    engine: Literal["valkey", "redis"] = Field("valkey", description="ElastiCache engine (both speak the Redis protocol Celery uses).")
    engine_version: Annotated[str, matching(r"\d+\.\d+", "must be a major.minor engine version, like 8.0")] = Field(
        "8.0", description="ElastiCache engine version.")
    node_type: Annotated[str, matching(r"cache\.[a-z0-9]+\.[a-z0-9]+", "must be an ElastiCache node type, like cache.t4g.small")] = Field(
        "cache.t4g.small", description="ElastiCache node type.")
    nodes: int = Field(2, ge=2, le=6, description="Nodes of the replication group (a primary and replicas, spread over the zones).")
