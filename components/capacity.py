"""The capacity contract: how many DB connections a stack can open in the worst case, and how many the DB allows.

A model, stated so it can be checked (and argued with):
- every Airflow server process (each scheduler, DAG processor, triggerer, and each API server worker
  process) may hold its SQLAlchemy pool plus overflow;
- every Celery worker at KEDA's maximum may hold one connection per pool process plus one for itself
  (the result backend);
- KEDA's PostgreSQL scaler holds a couple of its own, always direct to the DB;
- with PgBouncer, what reaches the DB is PgBouncer's pool per replica, and the processes above are its clients;
- RDS keeps some connections for its superusers; the rest of `max_connections` is Airflow's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from components import instance_classes

if TYPE_CHECKING:
    from components.config import AirflowConfig

# superuser_reserved_connections (3) + rds.rds_superuser_reserved_connections (2), RDS for PostgreSQL defaults.
RDS_RESERVED_CONNECTIONS = 5
KEDA_CONNECTIONS = 2


@dataclass(frozen=True)
class ConnectionBudget:
    server_processes: int  # Airflow processes with a SQLAlchemy pool
    clients: int           # connections Airflow may open (to PgBouncer, or straight to the DB)
    to_database: int       # connections that reach the DB in the worst case
    available: int         # what the instance class allows Airflow

    @property
    def fits(self) -> bool:
        return self.to_database <= self.available


def server_processes(airflow: AirflowConfig) -> int:
    replicas = airflow.replicas
    return replicas.scheduler + replicas.dag_processor + replicas.triggerer + replicas.api_server * airflow.api_server_workers


def client_connections(airflow: AirflowConfig) -> int:
    pooled = server_processes(airflow) * (airflow.sql_alchemy_pool_size + airflow.sql_alchemy_max_overflow)
    workers = airflow.workers.max_replicas * (airflow.workers.concurrency + 1)
    return pooled + workers


def connection_budget(airflow: AirflowConfig, instance_class: str) -> ConnectionBudget:
    clients = client_connections(airflow)
    pgbouncer = airflow.pgbouncer
    through = pgbouncer.replicas * pgbouncer.pool_size if pgbouncer.enabled else clients
    return ConnectionBudget(
        server_processes=server_processes(airflow), clients=clients, to_database=through + KEDA_CONNECTIONS,
        available=instance_classes.max_connections(instance_class) - RDS_RESERVED_CONNECTIONS)
