"""The capacity contract: how many DB connections a stack can open in the worst case, and how many the DB allows; and
what one Celery worker pod must hold so a task within its budget is never OOM-killed.

A model, stated so it can be checked (and argued with):
- every Airflow server process (each scheduler, DAG processor, triggerer, and each API server worker
  process) may hold its SQLAlchemy pool plus overflow;
- every Celery worker at KEDA's maximum may hold one connection per pool process plus one for itself
  (the result backend);
- KEDA's PostgreSQL scaler holds a couple of its own, always direct to the DB;
- the task metrics exporter holds one, through the same connection string as Airflow;
- with PgBouncer, what reaches the DB is PgBouncer's pool per replica, and the processes above are its clients;
- RDS keeps some connections for its superusers; the rest of `max_connections` is Airflow's.

And the memory of one Celery worker pod, whose limit is the only bound on its tasks (measured on Airflow 3.1.7):
- each prefork pool process runs a task supervisor, which `worker_max_memory_per_child` caps (the supervisor cap:
  Celery compares only the pool process's own resident memory, never its task's);
- each supervisor forks the task process, which nothing in Celery watches: it has the task budget;
- the worker's main process takes a fixed share; at the limit the kernel OOM-kills the largest process, a task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from components import instance_classes

if TYPE_CHECKING:
    from components.config import AirflowConfig, WorkersConfig

# superuser_reserved_connections (3) + rds.rds_superuser_reserved_connections (2), RDS for PostgreSQL defaults.
RDS_RESERVED_CONNECTIONS = 5
KEDA_CONNECTIONS = 2
TASK_METRICS_CONNECTIONS = 1  # task_metrics_exporter.py: a pool of one
# The Celery worker's main process (consumer, heartbeats, the pool's bookkeeping), beside its pool.
WORKER_MAIN_PROCESS_MIB = 512


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
    return pooled + workers + TASK_METRICS_CONNECTIONS


def connection_budget(airflow: AirflowConfig, instance_class: str) -> ConnectionBudget:
    clients = client_connections(airflow)
    pgbouncer = airflow.pgbouncer
    through = pgbouncer.replicas * pgbouncer.pool_size if pgbouncer.enabled else clients
    return ConnectionBudget(
        server_processes=server_processes(airflow), clients=clients, to_database=through + KEDA_CONNECTIONS,
        available=instance_classes.max_connections(instance_class) - RDS_RESERVED_CONNECTIONS)


@dataclass(frozen=True)
class WorkerMemoryBudget:
    concurrency: int     # pool processes, each a supervisor with its task
    supervisor_mib: int  # maxMemoryPerChildKiB, rounded up to MiB
    task_mib: int        # taskMemoryMiB
    limit_mib: int       # the worker pod's memory limit

    @property
    def needed_mib(self) -> int:
        return self.concurrency * (self.supervisor_mib + self.task_mib) + WORKER_MAIN_PROCESS_MIB

    @property
    def needed_gib(self) -> int:
        """The smallest memoryGiB that holds it."""
        return math.ceil(self.needed_mib / 1024)

    @property
    def fits(self) -> bool:
        return self.needed_mib <= self.limit_mib

    @property
    def arithmetic(self) -> str:
        """The sum as the refusal and the plan state it: 8 × (384 + 1024) + 512 = 11776 MiB."""
        return f"{self.concurrency} × ({self.supervisor_mib} + {self.task_mib}) + {WORKER_MAIN_PROCESS_MIB} = {self.needed_mib} MiB"


def worker_memory_budget(workers: WorkersConfig) -> WorkerMemoryBudget:
    return WorkerMemoryBudget(concurrency=workers.concurrency, supervisor_mib=math.ceil(workers.max_memory_per_child_kib / 1024),
                              task_mib=workers.task_memory_mib, limit_mib=workers.memory_gib * 1024)
