"""Tests the capacity contract: worker slots within parallelism, DB connections within max_connections, a worker's memory
holding its pool's supervisors and tasks, and the other Airflow rules the config refuses with one sentence."""

from __future__ import annotations

import pytest

from components import capacity
from components.config import ConfigError, parse
from tests.conftest import stack_config, typed_config
from tests.test_config import MINIMAL, PROD_READY


def refusal(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return str(caught.value)


def with_airflow(base: dict, **changes) -> dict:
    return {**base, "airflow": {**base["airflow"], **changes}}


class TestConnectionBudget:
    """Tests the worst-case connection model."""

    def test_direct_budget_of_the_defaults(self):
        """Defaults, no PgBouncer: 7 processes × 15 pooled + 10 workers × 9 + 1 exporter + 2 for KEDA = 198 of db.m7g.large's 896."""
        budget = capacity.connection_budget(parse(MINIMAL).airflow, "db.m7g.large")
        assert (budget.server_processes, budget.clients, budget.to_database, budget.available) == (7, 196, 198, 896)

    def test_pgbouncer_caps_what_reaches_the_db(self):
        """With PgBouncer only its pools (2 × 20) and KEDA reach the DB, whatever the 13 × 15 + 10 × 9 + 1 clients."""
        budget = capacity.connection_budget(parse(PROD_READY).airflow, "db.m7g.large")
        assert (budget.server_processes, budget.clients, budget.to_database) == (13, 286, 42)


class TestWorkerMemoryBudget:
    """Tests the worker pod's memory: every pool process's supervisor cap and task budget, plus the worker's main process."""

    def test_defaults_fit(self):
        """Defaults: 8 × (384 + 1024) + 512 = 11776 MiB within the 12 GiB worker."""
        memory = capacity.worker_memory_budget(parse(MINIMAL).airflow.workers)
        assert (memory.supervisor_mib, memory.task_mib, memory.needed_mib, memory.limit_mib, memory.fits) == (384, 1024, 11776, 12288, True)

    @pytest.mark.parametrize("workers, needed, limit", [
        ({"concurrency": 4, "taskMemoryMiB": 512, "memoryGiB": 4}, 4096, 4096),
        ({"concurrency": 1, "maxMemoryPerChildKiB": 65536, "taskMemoryMiB": 448, "memoryGiB": 1}, 1024, 1024),
        ({"concurrency": 16, "maxReplicas": 4, "taskMemoryMiB": 2048, "memoryGiB": 39}, 39424, 39936),
    ], ids=["exactly-full", "smallest-worker", "heavy-tasks"])
    def test_fits(self, workers, needed, limit):
        """A worker that holds exactly its pool's caps, budgets and main process is accepted."""
        memory = capacity.worker_memory_budget(parse(with_airflow(MINIMAL, workers=workers)).airflow.workers)
        assert (memory.needed_mib, memory.limit_mib, memory.fits) == (needed, limit, True)

    @pytest.mark.parametrize("stack, arithmetic, limit", [("dev", "4 × (384 + 512) + 512 = 4096 MiB", 4096),
                                                          ("prod", "8 × (384 + 1024) + 512 = 11776 MiB", 16384)], ids=["dev", "prod"])
    def test_the_stack_files_fit(self, stack, arithmetic, limit):
        """Dev fills its 4 GiB workers with 512 MiB tasks; prod's 16 GiB workers hold the default 1024 MiB tasks."""
        memory = capacity.worker_memory_budget(typed_config(stack_config(stack)).airflow.workers)
        assert (memory.arithmetic, memory.limit_mib, memory.fits) == (arithmetic, limit, True)


CAPACITY_REFUSALS = [
    ("slots-beyond-parallelism", MINIMAL, {"parallelism": 64, "workers": {"maxReplicas": 10, "concurrency": 8}},
     "Config key 'airflow-platform:airflow.workers.maxReplicas' must keep maxReplicas × concurrency (10 × 8 = 80) within "
     "airflow.parallelism (64), or KEDA adds workers the scheduler never fills (got 10)."),
    ("direct-connections-beyond-the-class", {**MINIMAL, "database": {"instanceClass": "db.t4g.medium"}},
     {"parallelism": 1000, "workers": {"maxReplicas": 40, "concurrency": 8, "memoryGiB": 12}},
     "Config key 'airflow-platform:database.instanceClass' must allow the 468 DB connections this stack may open "
     "(7 Airflow processes × 15 pooled + 40 workers × 9 + 1 for the task metrics exporter + 2 for KEDA), but db.t4g.medium leaves Airflow 445 (got \"db.t4g.medium\")."),
    ("pgbouncer-pools-beyond-the-class", {**PROD_READY, "database": {"instanceClass": "db.t4g.medium"}},
     {"pgbouncer": {"replicas": 3, "poolSize": 200}},
     "Config key 'airflow-platform:database.instanceClass' must allow the 602 DB connections this stack may open "
     "(3 PgBouncers × 200 + 2 for KEDA), but db.t4g.medium leaves Airflow 445 (got \"db.t4g.medium\")."),
    ("pgbouncer-clients-beyond-max-client-conn", PROD_READY, {"pgbouncer": {"maxClientConn": 100}},
     "Config key 'airflow-platform:airflow.pgbouncer.maxClientConn' must let the PgBouncer replicas accept the 286 client connections "
     "Airflow may open (13 Airflow processes × 15 pooled + 10 workers × 9 + 1 for the task metrics exporter), not 200 (got 100)."),
    ("cooldown-below-grace", MINIMAL, {"longestTaskMinutes": 60, "workers": {"cooldownSeconds": 600}},
     "Config key 'airflow-platform:airflow.workers.cooldownSeconds' must be at least the workers' termination grace period (5400 s, "
     "1.5 × airflow.longestTaskMinutes), so KEDA does not scale a worker in while it may still be finishing a task (got 600)."),
    ("worker-memory-below-the-defaults-budget", MINIMAL, {"workers": {"memoryGiB": 11}},
     "Config key 'airflow-platform:airflow.workers.memoryGiB' must hold concurrency × (supervisor cap + task budget) + 512 MiB for the "
     "worker itself (8 × (384 + 1024) + 512 = 11776 MiB, at least 12 GiB), so a task that stays within its budget is never OOM-killed "
     "with its neighbours (got 11)."),
    ("worker-memory-below-a-raised-supervisor-cap", MINIMAL, {"workers": {"concurrency": 8, "maxMemoryPerChildKiB": 1572864, "memoryGiB": 16}},
     "Config key 'airflow-platform:airflow.workers.memoryGiB' must hold concurrency × (supervisor cap + task budget) + 512 MiB for the "
     "worker itself (8 × (1536 + 1024) + 512 = 20992 MiB, at least 21 GiB), so a task that stays within its budget is never OOM-killed "
     "with its neighbours (got 16)."),
    ("worker-memory-below-a-raised-task-budget", MINIMAL, {"workers": {"concurrency": 16, "maxReplicas": 4, "taskMemoryMiB": 2048, "memoryGiB": 32}},
     "Config key 'airflow-platform:airflow.workers.memoryGiB' must hold concurrency × (supervisor cap + task budget) + 512 MiB for the "
     "worker itself (16 × (384 + 2048) + 512 = 39424 MiB, at least 39 GiB), so a task that stays within its budget is never OOM-killed "
     "with its neighbours (got 32)."),
    ("supervisor-cap-rounded-up-to-a-mib", MINIMAL, {"workers": {"concurrency": 2, "maxMemoryPerChildKiB": 400000, "taskMemoryMiB": 64, "memoryGiB": 1}},
     "Config key 'airflow-platform:airflow.workers.memoryGiB' must hold concurrency × (supervisor cap + task budget) + 512 MiB for the "
     "worker itself (2 × (391 + 64) + 512 = 1422 MiB, at least 2 GiB), so a task that stays within its budget is never OOM-killed "
     "with its neighbours (got 1)."),
    ("task-budget-below-range", MINIMAL, {"workers": {"taskMemoryMiB": 32}},
     "Config key 'airflow-platform:airflow.workers.taskMemoryMiB' must be an integer from 64 to 524288 (got 32)."),
    ("task-budget-above-range", MINIMAL, {"workers": {"taskMemoryMiB": 524289}},
     "Config key 'airflow-platform:airflow.workers.taskMemoryMiB' must be an integer from 64 to 524288 (got 524289)."),
    ("task-budget-as-string", MINIMAL, {"workers": {"taskMemoryMiB": "1024"}},
     "Config key 'airflow-platform:airflow.workers.taskMemoryMiB' must be an integer from 64 to 524288 (got \"1024\")."),
    ("min-above-max", MINIMAL, {"workers": {"minReplicas": 5, "maxReplicas": 3}},
     "Config key 'airflow-platform:airflow.workers.minReplicas' must be at most airflow.workers.maxReplicas (3) (got 5)."),
    ("single-scheduler-in-production", PROD_READY, {"replicas": {"scheduler": 1}},
     "Config key 'airflow-platform:airflow.replicas.scheduler' must be at least 2 in production (got 1)."),
    ("single-api-server-in-production", PROD_READY, {"replicas": {"apiServer": 1}},
     "Config key 'airflow-platform:airflow.replicas.apiServer' must be at least 2 in production (got 1)."),
    ("latest-sync-image", MINIMAL, {"dagSync": {"image": "ghcr.io/scribd/objinsync:latest"}},
     "Config key 'airflow-platform:airflow.dagSync.image' must be an image with a pinned tag (not latest) or digest, like "
     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/objinsync:2.5.0 (got \"ghcr.io/scribd/objinsync:latest\")."),
    ("untagged-sync-image", MINIMAL, {"dagSync": {"image": "ghcr.io/scribd/objinsync"}},
     "Config key 'airflow-platform:airflow.dagSync.image' must be an image with a pinned tag (not latest) or digest, like "
     "123456789012.dkr.ecr.eu-west-1.amazonaws.com/objinsync:2.5.0 (got \"ghcr.io/scribd/objinsync\")."),
    ("sync-interval-too-long", MINIMAL, {"dagSync": {"image": "a/objinsync:2.5.0", "intervalSeconds": 600}},
     "Config key 'airflow-platform:airflow.dagSync.intervalSeconds' must be an integer from 5 to 300 (got 600)."),
    ("executor-not-offered", MINIMAL, {"executor": "KubernetesExecutor"},
     "Config key 'airflow-platform:airflow.executor' must be one of 'CeleryExecutor' or 'CeleryExecutor,KubernetesExecutor' (got \"KubernetesExecutor\")."),
    ("cron-with-four-fields", MINIMAL, {"databaseCleanup": {"schedule": "0 3 * *"}},
     "Config key 'airflow-platform:airflow.databaseCleanup.schedule' must be a five-field cron schedule, like \"0 3 * * 0\" (got \"0 3 * *\")."),
]


@pytest.mark.parametrize("base, changes, sentence", [r[1:] for r in CAPACITY_REFUSALS], ids=[r[0] for r in CAPACITY_REFUSALS])
def test_refused_with_sentence(base, changes, sentence):
    """Each capacity and Airflow rule stops the run with its sentence."""
    assert refusal(with_airflow(base, **changes)) == sentence


def test_missing_airflow_section():
    """The airflow section is required: its DAG sync image has no safe default."""
    raw = {k: v for k, v in MINIMAL.items() if k != "airflow"}
    assert refusal(raw) == "Config key 'airflow-platform:airflow' is required."


@pytest.mark.parametrize("stack, clients, to_database, available", [("dev", 126, 128, 445), ("prod", 376, 82, 1797)], ids=["dev", "prod"])
def test_the_stack_files_fit(stack, clients, to_database, available):
    """The stack files' budgets: dev connects directly (7 × 15 + 4 × 5 + 1), prod through 2 PgBouncers × 40."""
    cfg = typed_config(stack_config(stack))
    budget = capacity.connection_budget(cfg.airflow, cfg.database.instance_class)
    assert (budget.clients, budget.to_database, budget.available, budget.fits) == (clients, to_database, available, True)


class TestNodePoolBudgets:
    """Tests what Karpenter's NodePools must hold: node capacity, not pod requests."""

    def test_prod_worker_pool_holds_kedas_maximum(self):
        """Prod: 20 workers of 4 cores and 16 GiB, one per node at worst, each node with 265m and 1685 MiB of overhead."""
        budget = capacity.worker_pool_budget(typed_config(stack_config("prod")))
        assert (budget.nodes_at_minimum, budget.nodes_at_maximum, budget.pod_millicores, budget.pod_mib) == (3, 20, 80_000, 327_680)
        assert (round(budget.cpu_needed, 1), round(budget.memory_needed_gib, 1)) == (85.3, 381.5)

    @pytest.mark.parametrize("categories, nodes, memory", [(["c", "m", "r"], 45, 356.8), (["m", "r"], 20, 312.3), (["r"], 18, 308.8)],
                             ids=["compute-allowed", "general-and-memory", "memory-only"])
    def test_task_pool_counts_the_smallest_nodes_it_allows(self, categories, nodes, memory):
        """Prod's quota (64 cores, 256 GiB) on 4-vCPU nodes: with c (8 GiB) or m (16 GiB) memory decides the node count, with r
        alone (32 GiB) the CPU does (18 nodes of 3735m each)."""
        config = stack_config("prod")
        config["airflow-platform:karpenter"]["nodePools"]["tasks"]["instanceCategories"] = categories
        budget = capacity.task_pool_budget(typed_config(config))
        assert (budget.nodes_at_maximum, round(budget.memory_needed_gib, 1)) == (nodes, memory)
