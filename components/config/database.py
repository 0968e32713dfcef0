"""The `database` key: the metadata DB."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field

from components.config.fields import LOG_RETENTION_DAYS, PERFORMANCE_INSIGHTS_RETENTION_DAYS, known_db_instance_class, one_of
from components.config.model import Model


class DatabaseConfig(Model):
    engine_version: Literal["14", "15", "16", "17"] = Field("16", description="PostgreSQL major version (minor versions upgrade automatically).")
    instance_class: Annotated[str, AfterValidator(known_db_instance_class)] = Field(
        "db.m7g.large", description="RDS instance class; sets max_connections, which the connection alarm is relative to.")
    allocated_storage_gib: int = Field(50, ge=20, le=65536, alias="allocatedStorageGiB", description="Initial gp3 storage.")
    max_allocated_storage_gib: int = Field(200, ge=21, le=65536, alias="maxAllocatedStorageGiB", description="Storage autoscaling ceiling, above allocatedStorageGiB.")
    backup_retention_days: Optional[int] = Field(
        None, ge=7, le=35, description="Automated backup retention (at least 14 in production).",
        json_schema_extra={"defaultText": "14 in production, else 7"})
    multi_az: Optional[bool] = Field(
        None, description="Standby in another zone (required in production).", json_schema_extra={"defaultText": "true in production, else false"})
    deletion_protection: Optional[bool] = Field(
        None, description="Deletion protection, and a final snapshot on delete (required in production).",
        json_schema_extra={"defaultText": "true in production, else false"})
    performance_insights_retention_days: Annotated[int, one_of(PERFORMANCE_INSIGHTS_RETENTION_DAYS, "Performance Insights retention periods")] = Field(
        7, description="Performance Insights retention: 7 (free), a multiple of 31 up to 713, or 731.")
    monitoring_interval_seconds: Literal[1, 5, 10, 15, 30, 60] = Field(60, description="Enhanced monitoring interval.")
    slow_statement_ms: int = Field(
        1000, ge=100, le=600_000,
        description="log_min_duration_statement: every statement that runs at least this many milliseconds is logged with its duration "
                    "to the postgresql log, which is exported to CloudWatch (at least 100: below it the log fills with the scheduler's own "
                    "queries).")
    log_retention_days: Annotated[int, one_of(LOG_RETENTION_DAYS, "CloudWatch Logs retention periods")] = Field(
        30, description="Retention of the exported postgresql and upgrade log groups (encrypted with their own key); one of CloudWatch's values: "
                        f"{', '.join(map(str, LOG_RETENTION_DAYS))}.")
