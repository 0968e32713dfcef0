"""The Airflow release's values: the production lessons of ../shared/DESIGN.md as a contract the pull request must
keep. Absent keys take the chart's defaults (apache-airflow chart 1.19.0), which is what several lessons guard
against: KEDA off, KEDA through PgBouncer, StatsD on, no DB cleanup, a 600 s grace period."""

from __future__ import annotations

import ast
import math
from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .helm import CONFIG_MAP, RELEASE, only_airflow, values
from .model import Resource, Stack, known, path, policy

LONGEST_TASK_ANNOTATION = "airflow-platform/longest-task-minutes"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
DEFAULT_DAGS_FOLDER = "/opt/airflow/dags"
CHART_DEFAULT_GRACE_SECONDS = 600
RECYCLING_KEYS = ("worker_max_tasks_per_child", "worker_max_memory_per_child")


def _truthy(value: Any) -> bool:
    """Airflow config values arrive as strings ("True") or booleans."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"))


def airflow_policy(name: str, **kwargs: Any):
    """A policy over the Airflow chart's release values (other releases are not judged)."""
    def register(check):
        policy(name, types=(RELEASE,), **kwargs)(only_airflow(lambda release, stack, config: check(release, values(release), stack, config)))
        return check
    return register


@airflow_policy("airflow-celery-executor", severity="high",
                description="Airflow runs tasks on the Celery executor.",
                remediation="Keep executor 'CeleryExecutor' (airflow.executor; 'CeleryExecutor,KubernetesExecutor' adds "
                            "per-task pods): the platform's workers, KEDA scaling and alerts are built around Celery.")
def celery_executor(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    executors = [e.strip() for e in str(path(v, "executor", "CeleryExecutor")).split(",")]
    if "CeleryExecutor" not in executors:
        yield f"release {release.name} runs {', '.join(executors)}"


@airflow_policy("airflow-keda-autoscaling", severity="high",
                description="Celery workers scale with KEDA between a chosen minimum and maximum.",
                remediation="Set workers.keda.enabled true with minReplicaCount and maxReplicaCount (airflow.workers.minReplicas "
                            "and maxReplicas, checked against the DB's connections by the config).")
def keda(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if path(v, "workers.keda.enabled", False) is not True:
        yield f"release {release.name} does not scale workers with KEDA"
        return
    maximum, minimum = path(v, "workers.keda.maxReplicaCount"), path(v, "workers.keda.minReplicaCount", 0)
    if maximum is None:
        yield f"release {release.name} leaves workers.keda.maxReplicaCount to the chart's default"
    elif maximum < minimum:
        yield f"release {release.name} scales workers to at most {int(maximum)}, below the minimum {int(minimum)}"


@airflow_policy("airflow-keda-not-through-pgbouncer", severity="high",
                description="KEDA's queue query does not go through PgBouncer.",
                remediation="Set workers.keda.usePgbouncer false: through PgBouncer in transaction mode KEDA's query breaks "
                            "(prepared statements) and workers stop scaling.")
def keda_direct(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if path(v, "pgbouncer.enabled", False) is True and path(v, "workers.keda.enabled", False) is True \
            and path(v, "workers.keda.usePgbouncer", True) is not False:
        yield f"release {release.name} sends KEDA's query through PgBouncer"


def _config_module(text: str, name: str) -> Optional[dict[str, Any]]:
    """The literal keys of dict `name` in a Python module's text (spread entries such as **DEFAULTS are skipped)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return {k.value: v.value for k, v in zip(node.value.keys, node.value.values)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
    return None


def _mounted_config_maps(release: Resource, v: Mapping[str, Any], stack: Stack) -> list[Resource]:
    names = {known(path(volume, "configMap.name")) for volume in as_list(v.get("volumes")) + as_list(path(v, "workers.extraVolumes"))}
    namespace = known(release.props.get("namespace"))
    return [m for m in stack.of_type(CONFIG_MAP)
            if path(m.props, "metadata.name") in names and path(m.props, "metadata.namespace", namespace) == namespace]


@airflow_policy("airflow-celery-worker-recycling", needs_stack=True, severity="high",
                description="Celery replaces each worker process after a number of tasks and above a memory size.",
                remediation="Point config.celery.celery_config_options at a module (a mounted ConfigMap; Airflow writes one) that "
                            "sets worker_max_tasks_per_child and worker_max_memory_per_child: a leaking task then costs a "
                            "process, not an OOM-killed worker with all its tasks.")
def worker_recycling(release: Resource, v: Mapping[str, Any], stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    option = path(v, "config.celery.celery_config_options")
    if not option:
        yield f"release {release.name} uses Airflow's default Celery config, which recycles no worker process"
        return
    module, _, name = str(option).rpartition(".")
    filename = module.rsplit(".", 1)[-1] + ".py"
    sources = [known(path(m.props, "data", {})).get(filename) for m in _mounted_config_maps(release, v, stack)]
    settings = next((found for text in sources if text and (found := _config_module(text, name)) is not None), None)
    if settings is None:
        yield f"release {release.name} names {option}, but no mounted ConfigMap holds {filename} defining {name}"
        return
    for key in RECYCLING_KEYS:
        value = settings.get(key)
        if not isinstance(value, int) or value <= 0:
            yield f"{option} does not set {key}"


@airflow_policy("airflow-worker-grace-period", severity="high",
                description="Workers asked to stop get at least 1.5 × the longest task to finish.",
                remediation=f"Declare the longest task on the workers (podAnnotations '{LONGEST_TASK_ANNOTATION}', from "
                            "airflow.longestTaskMinutes) and set workers.terminationGracePeriodSeconds to at least 1.5 × it.")
def grace_period(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    declared = (path(v, "workers.podAnnotations") or {}).get(LONGEST_TASK_ANNOTATION)
    if declared is None or not str(declared).isdigit():
        yield f"release {release.name} does not declare the longest task ({LONGEST_TASK_ANNOTATION} on the workers)"
        return
    needed = math.ceil(int(declared) * 60 * 1.5)
    grace = path(v, "workers.terminationGracePeriodSeconds", CHART_DEFAULT_GRACE_SECONDS)
    if grace < needed:
        yield (f"release {release.name} gives workers {int(grace)} s to stop, less than 1.5 × the {declared}-minute longest "
               f"task ({needed} s)")


def _objinsync(container: Any) -> bool:
    words = [str(w) for w in as_list(container.get("command")) + as_list(container.get("args"))] + [str(container.get("image", ""))]
    return any("objinsync" in w for w in words)


def _destination(container: Any) -> Optional[str]:
    args = [str(a) for a in as_list(container.get("args"))]
    return args[-1] if args else None


@airflow_policy("airflow-dag-sync", severity="high",
                description="The DAG processor and workers sync DAGs with objinsync: an init container and a sidecar.",
                remediation="Keep dagSync on (AirflowValues adds objinsync 'pull --once' as an init container and 'pull' as a "
                            "native sidecar to each DAG reader), or deliver DAGs on a shared volume (dags.persistence with an "
                            "existingClaim) and keep the objinsync pair for the shared prefix.",
                config_schema={"components": {"type": "array", "items": {"type": "string"}, "default": ["dagProcessor", "workers"],
                                              "description": "The chart components that must run objinsync."}})
def dag_sync(release: Resource, v: Mapping[str, Any], _: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    dags_folder = path(v, "config.core.dags_folder", DEFAULT_DAGS_FOLDER)
    on_volume = path(v, "dags.persistence.enabled", False) is True and bool(path(v, "dags.persistence.existingClaim"))
    for component in config["components"]:
        initial = [c for c in as_list(path(v, f"{component}.extraInitContainers")) if _objinsync(c)]
        init = [c for c in initial if "--once" in as_list(c.get("args"))]
        # A daemon runs beside Airflow as an ordinary container or as a native sidecar (an init container that always restarts).
        sidecars = [c for c in [*as_list(path(v, f"{component}.extraContainers")), *(c for c in initial if c.get("restartPolicy") == "Always")]
                    if _objinsync(c) and "--once" not in as_list(c.get("args"))]
        if not init:
            yield f"{component} pods have no objinsync init container: a new pod would start without DAGs"
        if not sidecars:
            yield f"{component} pods have no objinsync sidecar: their DAGs would never change after start"
        if not on_volume and sidecars and dags_folder not in {_destination(c) for c in sidecars}:
            yield f"{component} pods sync nothing into {dags_folder}"


@airflow_policy("airflow-db-cleanup", severity="medium",
                description="Airflow's metadata DB is cleaned on a schedule, keeping a set number of days.",
                remediation="Set databaseCleanup.enabled true with retentionDays (airflow.databaseCleanup): without it the "
                            "task-instance and log tables grow until the scheduler slows down.")
def db_cleanup(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if path(v, "databaseCleanup.enabled", False) is not True:
        yield f"release {release.name} never cleans the metadata DB"
    elif not path(v, "databaseCleanup.retentionDays"):
        yield f"release {release.name} cleans the metadata DB with the chart's default retention"


@airflow_policy("airflow-workers-not-disrupted", severity="high",
                description="Node autoscalers do not evict Celery workers that are running tasks.",
                remediation=f"Annotate the workers '{DO_NOT_DISRUPT}: \"true\"' (Karpenter) and keep workers.safeToEvict false "
                            "(cluster-autoscaler); scale-in then waits for KEDA to stop idle workers.")
def not_disrupted(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if str((path(v, "workers.podAnnotations") or {}).get(DO_NOT_DISRUPT)) != "true":
        yield f"release {release.name}'s workers lack the {DO_NOT_DISRUPT} annotation"
    if path(v, "workers.safeToEvict", False) is True:
        yield f"release {release.name} lets cluster-autoscaler evict workers (workers.safeToEvict)"


@airflow_policy("airflow-statsd-off-with-otel", severity="medium",
                description="With OpenTelemetry metrics on, StatsD is off: one metrics path, no duplicate series.",
                remediation="Set statsd.enabled false and config.metrics.statsd_on False when config.metrics.otel_on is True.")
def statsd_off(release: Resource, v: Mapping[str, Any], _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if not _truthy(path(v, "config.metrics.otel_on")):
        return
    if path(v, "statsd.enabled", True) is not False:
        yield f"release {release.name} deploys the StatsD exporter next to OpenTelemetry"
    if _truthy(path(v, "config.metrics.statsd_on")):
        yield f"release {release.name} emits StatsD and OpenTelemetry metrics both"
