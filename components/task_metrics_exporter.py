"""The platform's task metrics exporter: reads task failures and queue waits from Airflow's metadata DB and sends them,
over OTLP like Airflow's own metrics, to the collector. The program ships this file in a ConfigMap and runs it with the
Airflow image (SQLAlchemy, psycopg2 and the OpenTelemetry SDK are Airflow's own dependencies): `python <this file>`.

Why the DB: Airflow 3.1 counts `ti_failures` inside the task process, which exits before its next periodic export, so
no failure reaches the collector; it reports no `task.queued_duration` for Celery tasks, and only when a task leaves the
queue anyway; and its `dag_processing.total_parse_time` times only the queueing of the files (the DAG processor sets
its start just before emitting it), never their parsing. The DB holds every task instance's state, end and queue time,
whatever killed it, and when each DAG was last parsed.

Every gauge is reported for every team (or every DAG and executor seen queued) on each export, as 0 when there is nothing, so a
drained queue reads 0 at once instead of its last value until the collector forgets it.

The names below are the OTLP names; the comments give the Prometheus names they become (tools/otlp_prometheus.py).
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time

FAILED_TASKS_OTLP = "airflow_platform.team_failed_tasks"        # airflow_platform_team_failed_tasks{team}
OLDEST_QUEUED_OTLP = "airflow_platform.oldest_queued_task"      # airflow_platform_oldest_queued_task_seconds{dag_id, executor}
OLDEST_QUEUED_UNIT = "s"
HEARTBEAT_OTLP = "airflow_platform.task_metrics.heartbeat"      # airflow_platform_task_metrics_heartbeat_total
PARSE_AGE_OTLP = "airflow_platform.oldest_dag_parse"            # airflow_platform_oldest_dag_parse_seconds
PARSE_AGE_UNIT = "s"
FAILED_TASKS = "airflow_platform_team_failed_tasks"
OLDEST_QUEUED = "airflow_platform_oldest_queued_task_seconds"
HEARTBEAT = "airflow_platform_task_metrics_heartbeat_total"
PARSE_AGE = "airflow_platform_oldest_dag_parse_seconds"
SERVICE_NAME = "airflow-task-metrics"
FAILURE_WINDOW = datetime.timedelta(hours=1)

# The environment the Deployment sets.
DB_URL_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
TEAMS_ENV = "AIRFLOW_PLATFORM_TEAMS"          # comma-separated team names
INTERVAL_ENV = "AIRFLOW_PLATFORM_INTERVAL_SECONDS"

FAILED_SQL = "SELECT dag_id, count(*) FROM task_instance WHERE state = 'failed' AND end_date >= :since GROUP BY dag_id"
QUEUED_SQL = ("SELECT dag_id, executor, min(queued_dttm) FROM task_instance WHERE state = 'queued' AND queued_dttm IS NOT NULL "
              "GROUP BY dag_id, executor")
PARSED_SQL = "SELECT min(last_parsed_time) FROM dag WHERE NOT is_stale AND last_parsed_time IS NOT NULL"


def team_of(dag_id: str, teams: frozenset[str]) -> str | None:
    """A team's DAG ids start with "<team>_" (team names have no underscore; dagtool check insists)."""
    prefix = dag_id.split("_", 1)[0]
    return prefix if "_" in dag_id and prefix in teams else None


def executor_of(chosen: str | None) -> str:
    """The executor a task instance is queued to: its task's `executor` (an alias, class name or import path, as the DAG
    author wrote it), or the first configured one when unset, which the stack config makes Celery."""
    if chosen is None or "celery" in chosen.lower():
        return "CeleryExecutor"
    return "KubernetesExecutor" if "kubernetes" in chosen.lower() else chosen


class Snapshot:
    """The last reading of the DB, which the instruments' callbacks report at each export."""

    def __init__(self, teams: frozenset[str]) -> None:
        self.teams = teams
        self.failed = {team: 0 for team in teams}
        self.queued: dict[tuple[str, str], float] = {}  # (dag_id, executor) -> seconds
        self.parse_age: float | None = None  # seconds since the least recently parsed DAG was parsed
        self.readings = 0
        self.lock = threading.Lock()

    def refresh(self, connection, now: datetime.datetime) -> None:
        from sqlalchemy import text

        failed = {team: 0 for team in self.teams}
        for dag_id, count in connection.execute(text(FAILED_SQL), {"since": now - FAILURE_WINDOW}):
            team = team_of(dag_id, self.teams)
            if team:
                failed[team] += count
        queued = {key: 0.0 for key in self.queued}
        for dag_id, chosen, since in connection.execute(text(QUEUED_SQL)):
            key = (dag_id, executor_of(chosen))
            queued[key] = max(queued.get(key, 0.0), _age(now, since))
        parsed = connection.execute(text(PARSED_SQL)).scalar()
        with self.lock:
            self.failed, self.queued, self.readings = failed, queued, self.readings + 1
            self.parse_age = None if parsed is None else _age(now, parsed)


def _age(now: datetime.datetime, since: datetime.datetime) -> float:
    since = since if since.tzinfo else since.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (now - since).total_seconds())


def main() -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from sqlalchemy import create_engine

    interval = int(os.environ.get(INTERVAL_ENV, "30"))
    teams = frozenset(t for t in os.environ.get(TEAMS_ENV, "").split(",") if t)
    snapshot = Snapshot(teams)
    # One connection, checked before use: the exporter must survive a DB failover.
    engine = create_engine(os.environ[DB_URL_ENV], pool_size=1, max_overflow=0, pool_pre_ping=True)
    resource = Resource.create({"service.name": SERVICE_NAME, "service.instance.id": f"{socket.gethostname()}:{os.getpid()}"})
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=os.environ[ENDPOINT_ENV]), export_interval_millis=interval * 1000)
    meter = MeterProvider(resource=resource, metric_readers=[reader]).get_meter("airflow_platform.task_metrics")

    def failed(options: CallbackOptions):
        with snapshot.lock:
            return [Observation(count, {"team": team}) for team, count in sorted(snapshot.failed.items())]

    def queued(options: CallbackOptions):
        with snapshot.lock:
            return [Observation(age, {"dag_id": dag_id, "executor": executor}) for (dag_id, executor), age in sorted(snapshot.queued.items())]

    def parse_age(options: CallbackOptions):
        with snapshot.lock:
            return [] if snapshot.parse_age is None else [Observation(snapshot.parse_age)]

    def readings(options: CallbackOptions):
        with snapshot.lock:
            return [Observation(snapshot.readings)]

    meter.create_observable_gauge(FAILED_TASKS_OTLP, [failed], description="Task instances of the team that failed in the last hour.")
    meter.create_observable_gauge(OLDEST_QUEUED_OTLP, [queued], unit=OLDEST_QUEUED_UNIT,
                                  description="How long the DAG's oldest queued task instance has waited.")
    meter.create_observable_gauge(PARSE_AGE_OTLP, [parse_age], unit=PARSE_AGE_UNIT,
                                  description="How long ago the least recently parsed DAG was parsed.")
    meter.create_observable_counter(HEARTBEAT_OTLP, [readings], description="Successful readings of the metadata DB.")
    while True:
        try:
            with engine.connect() as connection:
                snapshot.refresh(connection, datetime.datetime.now(datetime.timezone.utc))
        except Exception as error:  # a failed reading only stops the heartbeat; the next one may succeed
            print(f"reading the metadata DB failed: {error}", flush=True)
        time.sleep(interval)


if __name__ == "__main__":
    main()
