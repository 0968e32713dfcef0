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

And what Karpenter's NodePools must hold (their limits count the nodes' capacity, not what pods request):
- the worker pool: KEDA's maximum of workers, at worst one per node, each node with its overhead (NODE_OVERHEAD);
- the task pool: the task namespace's quota, spread at worst over the smallest nodes the pool allows (4 vCPUs, and the
  least memory per vCPU of its instance categories), each with its overhead.

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
from components.names import MINIMUM_NODE_CPUS

if TYPE_CHECKING:
    from components.config import AirflowConfig, PlatformConfig, WorkersConfig

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


# What every Karpenter node carries besides the pods it is for: the DaemonSets' requests (aws-node 25m, kube-proxy 100m,
# ebs-csi-node 30m and 120 MiB), the kubelet's reservations on AL2023 (kube-reserved: at most 110m up to 16 cores, and
# 255 MiB + 11 MiB for each of up to 110 pods; the eviction threshold, 100 MiB), and the memory the VM itself takes
# (Karpenter's vmMemoryOverheadPercent, 7.5 %).
NODE_OVERHEAD_MILLICORES = 25 + 100 + 30 + 110
NODE_OVERHEAD_MIB = 120 + 255 + 11 * 110 + 100
VM_MEMORY_OVERHEAD = 0.075
GIB_PER_CPU = {"c": 2, "m": 4, "r": 8}  # memory per vCPU of each EC2 instance category


@dataclass(frozen=True)
class NodePoolBudget:
    pool: str
    nodes_at_minimum: int  # at most, with the fewest pods
    nodes_at_maximum: int  # at most, with the most pods
    pod_millicores: int    # what the pods request together, at the maximum
    pod_mib: int
    cpu_limit: int         # the NodePool's limits
    memory_limit_gib: int

    @property
    def cpu_needed(self) -> float:
        return (self.pod_millicores + self.nodes_at_maximum * NODE_OVERHEAD_MILLICORES) / 1000

    @property
    def memory_needed_gib(self) -> float:
        return (self.pod_mib + self.nodes_at_maximum * NODE_OVERHEAD_MIB) / 1024 / (1 - VM_MEMORY_OVERHEAD)

    @property
    def cpu_arithmetic(self) -> str:
        return (f"{self.pod_millicores}m + {self.nodes_at_maximum} nodes × {NODE_OVERHEAD_MILLICORES}m "
                f"= {self.cpu_needed:.1f} cores")

    @property
    def memory_arithmetic(self) -> str:
        return (f"({self.pod_mib} MiB + {self.nodes_at_maximum} nodes × {NODE_OVERHEAD_MIB} MiB) / (1 - {VM_MEMORY_OVERHEAD}) "
                f"= {self.memory_needed_gib:.1f} GiB")


def worker_pool_budget(cfg: PlatformConfig) -> NodePoolBudget:
    workers, pool = cfg.airflow.workers, cfg.karpenter.node_pools.workers
    return NodePoolBudget("workers", nodes_at_minimum=workers.min_replicas, nodes_at_maximum=workers.max_replicas,
                          pod_millicores=workers.max_replicas * workers.cpu_millicores, pod_mib=workers.max_replicas * workers.memory_gib * 1024,
                          cpu_limit=pool.cpu_limit, memory_limit_gib=pool.memory_limit_gib)


def task_pool_budget(cfg: PlatformConfig) -> NodePoolBudget:
    quota, pool = cfg.airflow.task_pods, cfg.karpenter.node_pools.tasks
    smallest_mib = MINIMUM_NODE_CPUS * min(GIB_PER_CPU[c] for c in pool.instance_categories) * 1024
    usable_mib = smallest_mib * (1 - VM_MEMORY_OVERHEAD) - NODE_OVERHEAD_MIB
    usable_millicores = MINIMUM_NODE_CPUS * 1000 - NODE_OVERHEAD_MILLICORES
    nodes = max(math.ceil(quota.quota_cpu * 1000 / usable_millicores), math.ceil(quota.quota_memory_gib * 1024 / usable_mib))
    return NodePoolBudget("tasks", nodes_at_minimum=0, nodes_at_maximum=nodes, pod_millicores=quota.quota_cpu * 1000,
                          pod_mib=quota.quota_memory_gib * 1024, cpu_limit=pool.cpu_limit, memory_limit_gib=pool.memory_limit_gib)
