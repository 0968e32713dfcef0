"""The rules that relate several stack keys, checked after each key's own type and range.

The first broken rule stops the run with one `ConfigError` sentence naming the key that should change.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from components import capacity, instance_classes
from components.config.fields import RESERVED_TAG_KEYS, ConfigError
from components.config.sso import REQUIRED_SCOPES

if TYPE_CHECKING:
    from components.config.cluster import NodeGroupConfig
    from components.config.platform import PlatformConfig


def cpu_architecture(instance_type: str) -> str:
    # Graviton families carry a 'g' after the generation digit (m7g, c6gn, t4g, r8g).
    family = instance_type.split(".")[0]
    return "arm64" if re.fullmatch(r"[a-z]+\d+g[a-z]*", family) else "x86_64"


def node_group_architecture(group: NodeGroupConfig) -> str:
    return cpu_architecture(group.instance_types[0])


def check_rules(cfg: PlatformConfig) -> None:
    prod = cfg.production
    if prod and cfg.zones < 3:
        raise ConfigError("zones", "must be at least 3 in production", cfg.zones)

    network = cfg.network
    if network.existing_vpc_id is not None:
        if network.vpc_cidr is not None:
            raise ConfigError("network.vpcCidr", "must be unset when network.existingVpcId is set (the existing VPC keeps its own CIDR)", network.vpc_cidr)
        if len(network.existing_private_subnet_ids) != cfg.zones:
            raise ConfigError("network.existingPrivateSubnetIds", f"must list one private subnet per zone, {cfg.zones} in all",
                              network.existing_private_subnet_ids)
        if len(set(network.existing_private_subnet_ids)) != len(network.existing_private_subnet_ids):
            raise ConfigError("network.existingPrivateSubnetIds", "must not list a subnet twice", network.existing_private_subnet_ids)
        for key, ids in (("existingControlPlaneSubnetIds", network.existing_control_plane_subnet_ids),
                         ("existingEntrySubnetIds", network.existing_entry_subnet_ids)):
            if ids and len(set(ids)) != cfg.zones:
                raise ConfigError(f"network.{key}", f"must list one subnet per zone, {cfg.zones} different ones, or be unset", ids)
    else:
        for key, ids in (("existingPrivateSubnetIds", network.existing_private_subnet_ids),
                         ("existingControlPlaneSubnetIds", network.existing_control_plane_subnet_ids),
                         ("existingEntrySubnetIds", network.existing_entry_subnet_ids)):
            if ids:
                raise ConfigError(f"network.{key}", "may only be set together with network.existingVpcId", ids)
    if prod and network.existing_vpc_id is None and network.nat_gateways != "per-zone":
        raise ConfigError("network.natGateways", "must be per-zone in production, so losing a zone does not cut the others' egress", network.nat_gateways)

    group, key = cfg.cluster.node_groups.system, "cluster.nodeGroups.system"
    if not group.min_size <= group.desired_size <= group.max_size:
        raise ConfigError(f"{key}.desiredSize", f"must be from minSize ({group.min_size}) to maxSize ({group.max_size})", group.desired_size)
    architectures = {cpu_architecture(t) for t in group.instance_types}
    if len(architectures) > 1:
        raise ConfigError(f"{key}.instanceTypes", "must all have one CPU architecture (all Graviton or all x86_64), because a node group has one AMI type",
                          group.instance_types)
    if prod and group.min_size < cfg.zones:
        raise ConfigError(f"{key}.minSize", f"must be at least the zone count ({cfg.zones}) in production, so every zone has a node", group.min_size)

    names = [team.name for team in cfg.teams]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"teams[{index}].name", "must be unique among the teams", name)

    db = cfg.database
    if db.max_allocated_storage_gib <= db.allocated_storage_gib:
        raise ConfigError("database.maxAllocatedStorageGiB", f"must be above database.allocatedStorageGiB ({db.allocated_storage_gib}) so storage can autoscale",
                          db.max_allocated_storage_gib)
    if prod:
        if not db.multi_az:
            raise ConfigError("database.multiAz", "must be true in production", db.multi_az)
        if not db.deletion_protection:
            raise ConfigError("database.deletionProtection", "must be true in production", db.deletion_protection)
        if db.backup_retention_days < 14:
            raise ConfigError("database.backupRetentionDays", "must be at least 14 in production", db.backup_retention_days)
        if cfg.broker.mode != "elasticache":
            raise ConfigError("broker.mode", "must be elasticache in production, so the broker survives a zone loss", cfg.broker.mode)
        if not cfg.protect_stateful_resources:
            raise ConfigError("protectStatefulResources", "must be true in production", cfg.protect_stateful_resources)
        if network.flow_log_retention_days < 30:
            raise ConfigError("network.flowLogRetentionDays", "must be at least 30 in production, so a flow can still be traced weeks after "
                                                              "the incident it belongs to", network.flow_log_retention_days)
        if cfg.dag_storage.audit_retention_days < 90:
            raise ConfigError("dagStorage.auditRetentionDays", "must be at least 90 in production, so a DAG change found a quarter later "
                                                               "still shows who wrote it", cfg.dag_storage.audit_retention_days)
    if cfg.broker.mode == "elasticache" and cfg.broker.nodes > cfg.zones * 2:
        raise ConfigError("broker.nodes", f"must be at most twice the zone count ({cfg.zones * 2})", cfg.broker.nodes)

    alarms = cfg.alarms
    if alarms.free_storage_gib >= db.allocated_storage_gib:
        raise ConfigError("alarms.freeStorageGiB", f"must be below database.allocatedStorageGiB ({db.allocated_storage_gib})", alarms.free_storage_gib)
    memory_mib = instance_classes.memory_gib(db.instance_class) * 1024
    if alarms.freeable_memory_mib >= memory_mib:
        raise ConfigError("alarms.freeableMemoryMiB", f"must be below the memory of {db.instance_class} ({memory_mib} MiB)", alarms.freeable_memory_mib)

    check_airflow_rules(cfg)
    check_node_pool_rules(cfg)
    check_entry_rules(cfg)

    # A pager credential for the receiver not chosen would sit unused while criticals page nobody.
    unused = {"pagerduty": ("opsgenieApiKey", cfg.opsgenie_api_key), "opsgenie": ("pagerDutyRoutingKey", cfg.pager_duty_routing_key)}
    key, value = unused[cfg.alerting.critical_receiver]
    if value is not None:
        raise ConfigError(key, f"must be unset while alerting.criticalReceiver is {cfg.alerting.critical_receiver}: set that receiver's credential instead")

    for key in cfg.tags:
        if key in RESERVED_TAG_KEYS:
            raise ConfigError(f"tags.{key}", f"is set by the program; the tags {', '.join(RESERVED_TAG_KEYS)} come from environment and owner")


def check_airflow_rules(cfg: PlatformConfig) -> None:
    airflow, workers = cfg.airflow, cfg.airflow.workers
    if workers.min_replicas > workers.max_replicas:
        raise ConfigError("airflow.workers.minReplicas", f"must be at most airflow.workers.maxReplicas ({workers.max_replicas})", workers.min_replicas)
    if workers.cooldown_seconds < airflow.worker_grace_seconds:
        raise ConfigError("airflow.workers.cooldownSeconds",
                          f"must be at least the workers' termination grace period ({airflow.worker_grace_seconds} s, 1.5 × airflow.longestTaskMinutes), "
                          "so KEDA does not scale a worker in while it may still be finishing a task", workers.cooldown_seconds)
    slots = workers.max_replicas * workers.concurrency
    if slots > airflow.parallelism:
        raise ConfigError("airflow.workers.maxReplicas",
                          f"must keep maxReplicas × concurrency ({workers.max_replicas} × {workers.concurrency} = {slots}) within airflow.parallelism "
                          f"({airflow.parallelism}), or KEDA adds workers the scheduler never fills", workers.max_replicas)
    memory = capacity.worker_memory_budget(workers)
    if not memory.fits:
        raise ConfigError("airflow.workers.memoryGiB",
                          f"must hold concurrency × (supervisor cap + task budget) + {capacity.WORKER_MAIN_PROCESS_MIB} MiB for the worker itself "
                          f"({memory.arithmetic}, at least {memory.needed_gib} GiB), so a task that stays within its budget is never "
                          "OOM-killed with its neighbours", workers.memory_gib)
    if airflow.replicas.dag_processor > 1:
        raise ConfigError("airflow.replicas.dagProcessor",
                          "must be 1: two DAG processors of one DAG folder race to insert each new DAG and the loser exits (Airflow 3.1.7, "
                          "shown by the end-to-end suite); while a lone DAG processor restarts, the scheduler keeps running tasks",
                          airflow.replicas.dag_processor)
    if cfg.production:
        for key, value in (("scheduler", airflow.replicas.scheduler), ("apiServer", airflow.replicas.api_server)):
            if value < 2:
                raise ConfigError(f"airflow.replicas.{key}", "must be at least 2 in production", value)

    budget = capacity.connection_budget(airflow, cfg.database.instance_class)
    model = (f"{budget.server_processes} Airflow processes × {airflow.sql_alchemy_pool_size + airflow.sql_alchemy_max_overflow} pooled "
             f"+ {workers.max_replicas} workers × {workers.concurrency + 1} + {capacity.TASK_METRICS_CONNECTIONS} for the task metrics exporter")
    if airflow.pgbouncer.enabled:
        accepted = airflow.pgbouncer.replicas * airflow.pgbouncer.max_client_conn
        if budget.clients > accepted:
            raise ConfigError("airflow.pgbouncer.maxClientConn",
                              f"must let the PgBouncer replicas accept the {budget.clients} client connections Airflow may open ({model}), "
                              f"not {accepted}", airflow.pgbouncer.max_client_conn)
        model = f"{airflow.pgbouncer.replicas} PgBouncers × {airflow.pgbouncer.pool_size}"
    if not budget.fits:
        raise ConfigError("database.instanceClass",
                          f"must allow the {budget.to_database} DB connections this stack may open ({model} + {capacity.KEDA_CONNECTIONS} for KEDA), "
                          f"but {cfg.database.instance_class} leaves Airflow {budget.available}", cfg.database.instance_class)


def check_node_pool_rules(cfg: PlatformConfig) -> None:
    grace_minutes = math.ceil(cfg.airflow.worker_grace_seconds / 60)
    for name in ("workers", "tasks"):
        pool, key = getattr(cfg.karpenter.node_pools, name), f"karpenter.nodePools.{name}"
        for attribute, label in (("instance_categories", "instanceCategories"), ("capacity_types", "capacityTypes")):
            values = getattr(pool, attribute)
            if len(set(values)) != len(values):
                raise ConfigError(f"{key}.{label}", "must not list a value twice", values)
        if pool.termination_grace_minutes is not None and pool.termination_grace_minutes < grace_minutes:
            raise ConfigError(f"{key}.terminationGraceMinutes",
                              f"must be at least the workers' grace period ({grace_minutes} minutes, 1.5 × airflow.longestTaskMinutes), so a node "
                              "that expires or drifts lets the longest task finish before its pods are deleted", pool.termination_grace_minutes)
    if cfg.production and cfg.karpenter.node_pools.workers.capacity_types != ["on-demand"]:
        raise ConfigError("karpenter.nodePools.workers.capacityTypes",
                          "must be [on-demand] in production: a reclaimed Spot node cuts every running task of its workers short",
                          cfg.karpenter.node_pools.workers.capacity_types)
    holds = {"workers": f"KEDA's maximum of {cfg.airflow.workers.max_replicas} workers (airflow.workers.maxReplicas), one per node at worst",
             "tasks": "the task namespace's quota (airflow.taskPods.quotaCpu and quotaMemoryGiB) on the smallest nodes the pool allows"}
    for budget in (capacity.worker_pool_budget(cfg), capacity.task_pool_budget(cfg)):
        key = f"karpenter.nodePools.{budget.pool}"
        if budget.cpu_limit < budget.cpu_needed:
            raise ConfigError(f"{key}.cpuLimit", f"must hold {holds[budget.pool]}: {budget.cpu_arithmetic}", budget.cpu_limit)
        if budget.memory_limit_gib < budget.memory_needed_gib:
            raise ConfigError(f"{key}.memoryLimitGiB", f"must hold {holds[budget.pool]}: {budget.memory_arithmetic}", budget.memory_limit_gib)


def check_entry_rules(cfg: PlatformConfig) -> None:
    """The HTTPS entry and single sign-on: what each needs from the other, and what production requires."""
    entry, sso = cfg.entry, cfg.sso
    if entry is not None:
        if len(set(entry.client_cidrs)) != len(entry.client_cidrs):
            raise ConfigError("entry.clientCidrs", "must not list a range twice", entry.client_cidrs)
        if entry.internet_facing and cfg.network.existing_vpc_id is not None:
            raise ConfigError("entry.internetFacing", "must be false with network.existingVpcId: the program knows only the private subnets "
                                                      "of an existing VPC")
        if entry.certificate_arn is not None and entry.certificate_arn.split(":")[3] != cfg.region:
            raise ConfigError("entry.certificateArn", f"must be a certificate in the stack's region ({cfg.region}): a load balancer uses "
                                                      "only certificates of its own region", entry.certificate_arn)
    elif cfg.production:
        raise ConfigError("entry", "must be set in production: without it no team can reach the Airflow UI or Grafana")
    if sso is not None:
        if entry is None:
            raise ConfigError("sso", "needs entry: the provider sends users back to https://airflow.<entry.domain>, which only the entry serves")
        missing = [scope for scope in REQUIRED_SCOPES if scope not in sso.scopes]
        if missing:
            raise ConfigError("sso.scopes", f"must include {', '.join(REQUIRED_SCOPES)} (the user's name and e-mail come from them)", sso.scopes)
        if cfg.sso_client_secret is None:
            raise ConfigError("ssoClientSecret", "must be set while sso is set: pulumi config set --secret airflow-platform:ssoClientSecret <secret>")
    else:
        if cfg.production:
            raise ConfigError("sso", "must be set in production: team members log in through the identity provider, not with shared passwords")
        if cfg.sso_client_secret is not None:
            raise ConfigError("ssoClientSecret", "must be unset while sso is unset: nothing would use it")
        for index, team in enumerate(cfg.teams):
            if team.sso_groups:
                raise ConfigError(f"teams[{index}].ssoGroups", "may only be set together with sso: without it nobody logs in through the provider",
                                  team.sso_groups)
