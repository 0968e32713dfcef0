"""Tests the typed stack config: defaults, environment rules, and the one-sentence refusals."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError, PlatformConfig, decode_stack_config, parse

DAG_SYNC_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/objinsync:2.5.0"
AIRFLOW = {"dagSync": {"image": DAG_SYNC_IMAGE}}
MINIMAL = {"aws:region": "eu-west-1", "environment": "dev", "owner": "data-platform", "airflow": AIRFLOW}
ENTRY = {"hostedZoneId": "Z0123456789ABCDEFGHIJ", "domain": "data.example.com", "clientCidrs": ["10.8.0.0/16"]}
SSO = {"issuer": "https://login.example.com", "clientId": "airflow-platform", "authorizationUrl": "https://login.example.com/authorize",
       "tokenUrl": "https://login.example.com/token", "userinfoUrl": "https://login.example.com/userinfo", "adminGroups": ["platform-admins"]}
PROD_READY = {
    "aws:region": "eu-west-1", "environment": "prod", "owner": "data-platform", "zones": 3, "airflow": AIRFLOW,
    "cluster": {"nodeGroups": {"system": {"minSize": 3, "desiredSize": 3}}},
    "entry": ENTRY, "sso": SSO, "ssoClientSecret": "example-client-secret",
}
TEAM = {"name": "analytics", "owner": "analytics@example.com", "repository": "example-org/analytics-dags"}


def refusal(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return str(caught.value)


class TestDefaults:
    """Tests what an almost empty stack gets."""

    def test_minimal_non_production_defaults(self):
        """A stack with only region, environment and owner gets the documented non-production defaults."""
        cfg = parse(MINIMAL)
        assert (cfg.production, cfg.zones, cfg.network.vpc_cidr, cfg.network.nat_gateways) == (False, 3, "10.0.0.0/16", "single")
        assert (cfg.database.multi_az, cfg.database.deletion_protection, cfg.database.backup_retention_days) == (False, False, 7)
        assert (cfg.broker.mode, cfg.protect_stateful_resources, cfg.teams) == ("in-cluster", False, [])
        assert cfg.cluster.node_groups.system.instance_types == ["m6i.xlarge"]
        workers, tasks = cfg.karpenter.node_pools.workers, cfg.karpenter.node_pools.tasks
        assert (workers.capacity_types, workers.consolidation_policy, workers.expire_after_hours) == (["on-demand"], "WhenEmpty", 720)
        assert (tasks.capacity_types, tasks.instance_categories, tasks.termination_grace_minutes) == (["spot", "on-demand"], ["c", "m", "r"], None)

    @pytest.mark.parametrize("environment", ["prod", "production"])
    def test_production_defaults(self, environment):
        """An environment named prod or production gets the production defaults without further keys."""
        cfg = parse({**PROD_READY, "environment": environment})
        assert cfg.production is True
        assert (cfg.network.nat_gateways, cfg.database.multi_az, cfg.database.deletion_protection) == ("per-zone", True, True)
        assert (cfg.database.backup_retention_days, cfg.broker.mode, cfg.protect_stateful_resources) == (14, "elasticache", True)

    def test_production_flag_overrides_the_name(self):
        """production: true applies the production rules to an environment of any name."""
        cfg = parse({**PROD_READY, "environment": "live", "production": True})
        assert (cfg.name, cfg.database.multi_az) == ("airflow-live", True)

    def test_partial_node_group_keeps_other_defaults(self):
        """Setting one key of a node group leaves that group's other defaults in place."""
        cfg = parse({**MINIMAL, "cluster": {"nodeGroups": {"system": {"maxSize": 30}}}})
        system = cfg.cluster.node_groups.system
        assert (system.max_size, system.min_size, system.instance_types) == (30, 2, ["m6i.xlarge"])

    def test_partial_node_pool_keeps_other_defaults(self):
        """Setting one key of a NodePool leaves that pool's other defaults, and the other pool, in place."""
        cfg = parse({**MINIMAL, "karpenter": {"nodePools": {"tasks": {"cpuLimit": 200}}}})
        tasks = cfg.karpenter.node_pools.tasks
        assert (tasks.cpu_limit, tasks.memory_limit_gib, tasks.disk_size_gib, cfg.karpenter.node_pools.workers.cpu_limit) == (200, 400, 100, 100)

    def test_charts_come_from_their_official_repositories(self):
        """Unless a stack names a mirror, each chart is installed from the repository that publishes it."""
        repositories = parse(MINIMAL).chart_repositories
        assert repositories.model_dump(by_alias=True) == {
            "karpenter-crd": "oci://public.ecr.aws/karpenter", "karpenter": "oci://public.ecr.aws/karpenter",
            "aws-load-balancer-controller": "https://aws.github.io/eks-charts",
            "airflow": "https://airflow.apache.org", "keda": "https://kedacore.github.io/charts",
            "opentelemetry-collector": "https://open-telemetry.github.io/opentelemetry-helm-charts",
            "kube-prometheus-stack": "https://prometheus-community.github.io/helm-charts"}

    @pytest.mark.parametrize("repository", [
        "https://artifactory.example.com/artifactory/api/helm/helm-remote", "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/helm-charts",
        "http://127.0.0.1:8080", "oci://localhost:5000/charts"], ids=["artifactory", "ecr", "loopback-http", "loopback-oci"])
    def test_chart_mirror_accepted(self, repository):
        """A mirror over TLS, an OCI registry path, or plain HTTP on the machine itself is taken as written."""
        assert parse({**MINIMAL, "chartRepositories": {"keda": repository}}).chart_repositories.keda == repository

    def test_worker_memory_and_cleanup_defaults(self):
        """Workers cap each supervisor at 384 MiB and budget 1024 MiB per task in a 12 GiB pod; the cleanup skips the archive tables."""
        cfg = parse(MINIMAL)
        workers = cfg.airflow.workers
        assert (workers.concurrency, workers.max_memory_per_child_kib, workers.task_memory_mib, workers.memory_gib) == (8, 393_216, 1024, 12)
        assert (cfg.airflow.database_cleanup.retention_days, cfg.airflow.database_cleanup.skip_archive) == (90, True)

    def test_runbooks_default_to_the_repository_folder(self):
        """Unless a stack says where its runbooks are browsable, alerts point at the repository-relative docs/runbooks."""
        assert parse(MINIMAL).alerting.runbook_base_url == "docs/runbooks"

    @pytest.mark.parametrize("url", [
        "https://github.com/example-org/airflow-platform/blob/main/docs/runbooks", "https://docs.example.com", "https://wiki.example.com:8443/airflow/runbooks",
    ], ids=["github-fork", "host-only", "port-and-path"])
    def test_runbook_base_url_accepted(self, url):
        """An https:// base without a trailing / is taken as written."""
        assert parse({**MINIMAL, "alerting": {"runbookBaseUrl": url}}).alerting.runbook_base_url == url

    def test_default_tags(self):
        """Every resource is tagged with environment, owner and managed-by, plus the stack's own tags."""
        cfg = parse({**MINIMAL, "tags": {"cost-center": "cc-42"}})
        assert cfg.default_tags == {"cost-center": "cc-42", "environment": "dev", "owner": "data-platform", "managed-by": "pulumi"}


# What every malformed alerting.runbookBaseUrl is told, before "(got ...)".
RUNBOOK_REFUSAL = ("Config key 'airflow-platform:alerting.runbookBaseUrl' must be an https:// URL without a trailing /, query or fragment "
                   "(each alert's runbook is <this>/<AlertName>.md), like https://github.com/example-org/airflow-platform/blob/main/docs/runbooks")
REFUSALS = [
    ("unknown-key", {"zonez": 3},
     "Config key 'airflow-platform:zonez' is not a known key; the known keys there are: airflow, alarmWebhookUrl, alarms, alerting, broker, "
     "chartRepositories, cluster, dagStorage, "
     "database, entry, environment, images, karpenter, monitoring, network, opsgenieApiKey, owner, pagerDutyRoutingKey, production, protectStatefulResources, "
     "slackBotToken, slackWebhookUrl, sso, ssoClientSecret, tags, teams, watchdogToken, zones."),
    ("unknown-nested-key", {"cluster": {"nodeGroups": {"gpu": {}}}},
     "Config key 'airflow-platform:cluster.nodeGroups.gpu' is not a known key; the known keys there are: system."),
    ("worker-node-group-gone", {"cluster": {"nodeGroups": {"workers": {"maxSize": 4}}}},
     "Config key 'airflow-platform:cluster.nodeGroups.workers' is not a known key; the known keys there are: system."),
    ("string-for-integer", {"zones": "3"}, "Config key 'airflow-platform:zones' must be an integer from 2 to 6 (got \"3\")."),
    ("word-for-boolean", {"database": {"multiAz": "yes"}}, "Config key 'airflow-platform:database.multiAz' must be true or false (got \"yes\")."),
    ("number-for-string", {"cluster": {"kubernetesVersion": 1.33}},
     "Config key 'airflow-platform:cluster.kubernetesVersion' must be a string (quote it in YAML) (got 1.33)."),
    ("map-for-list", {"teams": {"name": "a"}}, "Config key 'airflow-platform:teams' must be a list (got {'name': 'a'})."),
    ("zones-above-range", {"zones": 7}, "Config key 'airflow-platform:zones' must be an integer from 2 to 6 (got 7)."),
    ("zones-below-range", {"zones": 1}, "Config key 'airflow-platform:zones' must be an integer from 2 to 6 (got 1)."),
    ("node-count-out-of-range", {"cluster": {"nodeGroups": {"system": {"maxSize": 0}}}},
     "Config key 'airflow-platform:cluster.nodeGroups.system.maxSize' must be an integer from 1 to 500 (got 0)."),
    ("backups-below-seven", {"database": {"backupRetentionDays": 3}},
     "Config key 'airflow-platform:database.backupRetentionDays' must be an integer from 7 to 35 (got 3)."),
    ("cidr-with-host-bits", {"network": {"vpcCidr": "10.0.0.1/16"}},
     "Config key 'airflow-platform:network.vpcCidr' must be an IPv4 network in CIDR form with no host bits set, like 10.0.0.0/16 (got \"10.0.0.1/16\")."),
    ("cidr-not-a-cidr", {"network": {"vpcCidr": "ten-oh"}},
     "Config key 'airflow-platform:network.vpcCidr' must be an IPv4 network in CIDR form with no host bits set, like 10.0.0.0/16 (got \"ten-oh\")."),
    ("cidr-public", {"network": {"vpcCidr": "8.8.0.0/16"}},
     "Config key 'airflow-platform:network.vpcCidr' must be a private IPv4 network from /16 to /20, like 10.0.0.0/16 (got \"8.8.0.0/16\")."),
    ("cidr-too-small", {"network": {"vpcCidr": "10.0.0.0/24"}},
     "Config key 'airflow-platform:network.vpcCidr' must be a private IPv4 network from /16 to /20, like 10.0.0.0/16 (got \"10.0.0.0/24\")."),
    ("endpoint-open-to-world", {"cluster": {"endpointPublicAccessCidrs": ["203.0.113.0/24", "0.0.0.0/0"]}},
     "Config key 'airflow-platform:cluster.endpointPublicAccessCidrs[1]' must not open the API endpoint to the whole internet "
     "(0.0.0.0/0); list your own CIDR blocks (got \"0.0.0.0/0\")."),
    ("team-name-not-dns-safe", {"teams": [{**TEAM, "name": "Data_Science"}]},
     "Config key 'airflow-platform:teams[0].name' must be a DNS-safe name: lower-case letters, digits and '-', starting with a letter, "
     "at most 32 characters (got \"Data_Science\")."),
    ("duplicate-team", {"teams": [TEAM, {**TEAM, "repository": "example-org/other"}]},
     "Config key 'airflow-platform:teams[1].name' must be unique among the teams (got \"analytics\")."),
    ("team-without-repository", {"teams": [{"name": "analytics", "owner": "a@example.com"}]},
     "Config key 'airflow-platform:teams[0].repository' is required."),
    ("team-repository-not-owner-slash-name", {"teams": [{**TEAM, "repository": "analytics-dags"}]},
     "Config key 'airflow-platform:teams[0].repository' must be a GitHub repository as owner/name, like example-org/analytics-dags "
     "(got \"analytics-dags\")."),
    ("unknown-db-class", {"database": {"instanceClass": "db.x2g.large"}},
     "Config key 'airflow-platform:database.instanceClass' must be an RDS class of the t3, t4g, m5-m8 or r5-r8 families, "
     "like db.t4g.medium or db.m7g.large (got \"db.x2g.large\")."),
    ("desired-outside-min-max", {"cluster": {"nodeGroups": {"system": {"minSize": 3}}}},
     "Config key 'airflow-platform:cluster.nodeGroups.system.desiredSize' must be from minSize (3) to maxSize (4) (got 2)."),
    ("mixed-architectures", {"cluster": {"nodeGroups": {"system": {"instanceTypes": ["m7g.large", "m6i.large"]}}}},
     "Config key 'airflow-platform:cluster.nodeGroups.system.instanceTypes' must all have one CPU architecture (all Graviton or all x86_64), "
     "because a node group has one AMI type (got ['m7g.large', 'm6i.large'])."),
    ("storage-ceiling-not-above", {"database": {"allocatedStorageGiB": 100, "maxAllocatedStorageGiB": 100}},
     "Config key 'airflow-platform:database.maxAllocatedStorageGiB' must be above database.allocatedStorageGiB (100) so storage can autoscale (got 100)."),
    ("free-storage-alarm-above-storage", {"alarms": {"freeStorageGiB": 60}},
     "Config key 'airflow-platform:alarms.freeStorageGiB' must be below database.allocatedStorageGiB (50) (got 60)."),
    ("memory-alarm-above-class-memory", {"database": {"instanceClass": "db.t4g.medium"}, "alarms": {"freeableMemoryMiB": 4096}},
     "Config key 'airflow-platform:alarms.freeableMemoryMiB' must be below the memory of db.t4g.medium (4096 MiB) (got 4096)."),
    ("db-class-without-insights", {"database": {"instanceClass": "db.t4g.small"}},
     "Config key 'airflow-platform:database.instanceClass' must support Performance Insights, which db.t3 and db.t4g micro and small do not "
     "(got \"db.t4g.small\")."),
    ("endpoint-cidr-not-ipv4", {"cluster": {"endpointPublicAccessCidrs": ["2001:db8::/32"]}},
     "Config key 'airflow-platform:cluster.endpointPublicAccessCidrs[0]' must be an IPv4 CIDR block with no host bits set, like 203.0.113.0/24 "
     "(got \"2001:db8::/32\")."),
    ("log-retention-not-offered", {"cluster": {"logRetentionDays": 10}},
     "Config key 'airflow-platform:cluster.logRetentionDays' must be one of the CloudWatch Logs retention periods: 1, 3, 5, 7, 14, 30, 60, "
     "90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 (got 10)."),
    ("broker-mode-unknown", {"broker": {"mode": "rabbitmq"}},
     "Config key 'airflow-platform:broker.mode' must be one of 'elasticache' or 'in-cluster' (got \"rabbitmq\")."),
    ("reserved-tag", {"tags": {"owner": "someone"}},
     "Config key 'airflow-platform:tags.owner' is set by the program; the tags environment, owner, managed-by come from environment and owner."),
    ("aws-tag-key", {"tags": {"aws:team": "x"}},
     "Config key 'airflow-platform:tags.aws:team' must be a tag key of 1 to 128 characters not starting with aws: (got \"aws:team\")."),
    ("old-kubernetes", {"cluster": {"kubernetesVersion": "1.28"}},
     "Config key 'airflow-platform:cluster.kubernetesVersion' must be an EKS Kubernetes version 1.30 or newer, written like \"1.33\" (got \"1.28\")."),
    ("subnets-without-vpc", {"network": {"existingPrivateSubnetIds": ["subnet-0123456789abcdef0"]}},
     "Config key 'airflow-platform:network.existingPrivateSubnetIds' may only be set together with network.existingVpcId "
     "(got ['subnet-0123456789abcdef0'])."),
    ("existing-vpc-wrong-subnet-count", {"network": {"existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": ["subnet-0123456789abcdef0"]}},
     "Config key 'airflow-platform:network.existingPrivateSubnetIds' must list one private subnet per zone, 3 in all (got ['subnet-0123456789abcdef0'])."),
    ("edge-subnets-without-vpc", {"network": {"existingEntrySubnetIds": ["subnet-0123456789abcdef0"]}},
     "Config key 'airflow-platform:network.existingEntrySubnetIds' may only be set together with network.existingVpcId "
     "(got ['subnet-0123456789abcdef0'])."),
    ("control-plane-subnet-twice", {"network": {
        "existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": ["subnet-00000001", "subnet-00000002", "subnet-00000003"],
        "existingControlPlaneSubnetIds": ["subnet-00000011", "subnet-00000011", "subnet-00000013"]}},
     "Config key 'airflow-platform:network.existingControlPlaneSubnetIds' must list one subnet per zone, 3 different ones, or be unset "
     "(got ['subnet-00000011', 'subnet-00000011', 'subnet-00000013'])."),
    ("broker-nodes-beyond-zones", {"zones": 2, "broker": {"mode": "elasticache", "nodes": 5}},
     "Config key 'airflow-platform:broker.nodes' must be at most twice the zone count (4) (got 5)."),
    ("chart-repository-plain-http", {"chartRepositories": {"airflow": "http://charts.example.com/airflow"}},
     "Config key 'airflow-platform:chartRepositories.airflow' must use https:// (or oci://): plain http:// is allowed only on a loopback "
     "address, because a chart fetched in clear can be altered on the way (got \"http://charts.example.com/airflow\")."),
    ("chart-repository-trailing-slash", {"chartRepositories": {"kube-prometheus-stack": "oci://registry.example.com/charts/"}},
     "Config key 'airflow-platform:chartRepositories.kube-prometheus-stack' must be an https:// Helm repository or an oci:// registry "
     "path without a trailing /, like https://charts.example.com/airflow or oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/helm-charts "
     "(got \"oci://registry.example.com/charts/\")."),
    ("chart-repository-unknown-chart", {"chartRepositories": {"grafana": "https://grafana.github.io/helm-charts"}},
     "Config key 'airflow-platform:chartRepositories.grafana' is not a known key; the known keys there are: airflow, "
     "aws-load-balancer-controller, karpenter, karpenter-crd, keda, kube-prometheus-stack, opentelemetry-collector."),
    ("two-dag-processors", {"airflow": {**AIRFLOW, "replicas": {"dagProcessor": 2}}},
     "Config key 'airflow-platform:airflow.replicas.dagProcessor' must be 1: two DAG processors of one DAG folder race to insert each new "
     "DAG and the loser exits (Airflow 3.1.7, shown by the end-to-end suite); while a lone DAG processor restarts, the scheduler keeps "
     "running tasks (got 2)."),
    ("generation-out-of-range", {"karpenter": {"nodePools": {"workers": {"minimumGeneration": 0}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.minimumGeneration' must be an integer from 1 to 9 (got 0)."),
    ("architecture-unknown", {"karpenter": {"nodePools": {"tasks": {"architecture": "x86_64"}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.architecture' must be one of 'amd64' or 'arm64' (got \"x86_64\")."),
    ("consolidate-after-too-long", {"karpenter": {"nodePools": {"workers": {"consolidateAfterMinutes": 2000}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.consolidateAfterMinutes' must be an integer from 0 to 1440 (got 2000)."),
    ("expiry-beyond-a-year", {"karpenter": {"nodePools": {"tasks": {"expireAfterHours": 9000}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.expireAfterHours' must be an integer from 1 to 8760 (got 9000)."),
    ("quiet-window-too-long", {"karpenter": {"nodePools": {"workers": {"quietWindows": [{"schedule": "0 7 * * 1-5", "durationHours": 200}]}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.quietWindows[0].durationHours' must be an integer from 1 to 168 (got 200)."),
    ("node-disk-too-small", {"karpenter": {"nodePools": {"tasks": {"diskSizeGiB": 10}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.diskSizeGiB' must be an integer from 20 to 16384 (got 10)."),
    ("controller-cpu-too-small", {"karpenter": {"controllerCpuMillicores": 50}},
     "Config key 'airflow-platform:karpenter.controllerCpuMillicores' must be an integer from 100 to 8000 (got 50)."),
    ("controller-memory-too-small", {"karpenter": {"controllerMemoryMiB": 128}},
     "Config key 'airflow-platform:karpenter.controllerMemoryMiB' must be an integer from 256 to 16384 (got 128)."),
    ("pending-minutes-zero", {"alerting": {"pendingPodMinutes": 0}},
     "Config key 'airflow-platform:alerting.pendingPodMinutes' must be an integer from 1 to 1440 (got 0)."),
    ("ami-alias-latest", {"karpenter": {"amiAlias": "al2023@latest"}},
     "Config key 'airflow-platform:karpenter.amiAlias' must pin an EKS AL2023 AMI release as al2023@v<YYYYMMDD>, like al2023@v20250915 "
     "(not latest) (got \"al2023@latest\")."),
    ("ami-alias-other-family", {"karpenter": {"amiAlias": "bottlerocket@v1.20.0"}},
     "Config key 'airflow-platform:karpenter.amiAlias' must pin an EKS AL2023 AMI release as al2023@v<YYYYMMDD>, like al2023@v20250915 "
     "(not latest) (got \"bottlerocket@v1.20.0\")."),
    ("instance-category-unknown", {"karpenter": {"nodePools": {"workers": {"instanceCategories": ["p"]}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.instanceCategories[0]' must be one of 'c', 'm' or 'r' (got \"p\")."),
    ("instance-category-twice", {"karpenter": {"nodePools": {"tasks": {"instanceCategories": ["m", "m"]}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.instanceCategories' must not list a value twice (got ['m', 'm'])."),
    ("capacity-types-empty", {"karpenter": {"nodePools": {"tasks": {"capacityTypes": []}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.capacityTypes' must have at least 1 item(s) (got [])."),
    ("consolidation-policy-unknown", {"karpenter": {"nodePools": {"workers": {"consolidationPolicy": "Always"}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.consolidationPolicy' must be one of 'WhenEmpty' or 'WhenEmptyOrUnderutilized' "
     "(got \"Always\")."),
    ("disrupted-nodes-not-a-count", {"karpenter": {"nodePools": {"workers": {"maxDisruptedNodes": "half"}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.maxDisruptedNodes' must be a node count or a percentage of the pool's nodes, "
     "like 1 or 10% (got \"half\")."),
    ("quiet-window-bad-cron", {"karpenter": {"nodePools": {"workers": {"quietWindows": [{"schedule": "weekdays", "durationHours": 8}]}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.quietWindows[0].schedule' must be a five-field cron schedule, like "
     "\"0 3 * * 0\" (got \"weekdays\")."),
    ("termination-grace-below-workers", {"karpenter": {"nodePools": {"tasks": {"terminationGraceMinutes": 60}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.terminationGraceMinutes' must be at least the workers' grace period (90 minutes, "
     "1.5 × airflow.longestTaskMinutes), so a node that expires or drifts lets the longest task finish before its pods are deleted (got 60)."),
    ("worker-pool-cpu-below-keda", {"karpenter": {"nodePools": {"workers": {"cpuLimit": 20}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.cpuLimit' must hold KEDA's maximum of 10 workers (airflow.workers.maxReplicas), "
     "one per node at worst: 20000m + 10 nodes × 265m = 22.6 cores (got 20)."),
    ("worker-pool-memory-below-keda", {"karpenter": {"nodePools": {"workers": {"memoryLimitGiB": 100}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.memoryLimitGiB' must hold KEDA's maximum of 10 workers "
     "(airflow.workers.maxReplicas), one per node at worst: (122880 MiB + 10 nodes × 1685 MiB) / (1 - 0.075) = 147.5 GiB (got 100)."),
    ("task-pool-cpu-below-quota", {"karpenter": {"nodePools": {"tasks": {"cpuLimit": 32}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.cpuLimit' must hold the task namespace's quota (airflow.taskPods.quotaCpu and "
     "quotaMemoryGiB) on the smallest nodes the pool allows: 32000m + 23 nodes × 265m = 38.1 cores (got 32)."),
    ("task-pool-memory-below-quota", {"karpenter": {"nodePools": {"tasks": {"memoryLimitGiB": 128}}}},
     "Config key 'airflow-platform:karpenter.nodePools.tasks.memoryLimitGiB' must hold the task namespace's quota (airflow.taskPods.quotaCpu "
     "and quotaMemoryGiB) on the smallest nodes the pool allows: (131072 MiB + 23 nodes × 1685 MiB) / (1 - 0.075) = 179.3 GiB (got 128)."),
    ("runbook-url-trailing-slash", {"alerting": {"runbookBaseUrl": "https://docs.example.com/runbooks/"}},
     f"{RUNBOOK_REFUSAL} (got \"https://docs.example.com/runbooks/\")."),
    ("runbook-url-plain-http", {"alerting": {"runbookBaseUrl": "http://docs.example.com/runbooks"}},
     f"{RUNBOOK_REFUSAL} (got \"http://docs.example.com/runbooks\")."),
    ("runbook-url-relative", {"alerting": {"runbookBaseUrl": "docs/runbooks"}}, f"{RUNBOOK_REFUSAL} (got \"docs/runbooks\")."),
    ("runbook-url-with-query", {"alerting": {"runbookBaseUrl": "https://wiki.example.com/view?page=runbooks"}},
     f"{RUNBOOK_REFUSAL} (got \"https://wiki.example.com/view?page=runbooks\")."),
    ("existing-vpc-and-cidr", {"network": {"existingVpcId": "vpc-0123456789abcdef0", "vpcCidr": "10.0.0.0/16"}},
     "Config key 'airflow-platform:network.vpcCidr' must be unset when network.existingVpcId is set (the existing VPC keeps its own CIDR) (got \"10.0.0.0/16\")."),
]


class TestRefusals:
    """Tests that bad input stops the run with one sentence naming the key and what is allowed."""

    @pytest.mark.parametrize("change, sentence", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
    def test_refused_with_sentence(self, change, sentence):
        """The exact sentence for each kind of mistake."""
        assert refusal({**MINIMAL, **change}) == sentence

    def test_missing_region(self):
        """The region is the aws provider's own key, and it is required."""
        assert refusal({"environment": "dev", "owner": "x", "airflow": AIRFLOW}) == "Config key 'aws:region' is required."

    def test_refusal_is_a_clean_pulumi_error(self):
        """ConfigError is a pulumi.RunError, which Pulumi prints without a traceback."""
        import pulumi

        assert issubclass(ConfigError, pulumi.RunError)


PRODUCTION_REFUSALS = [
    ("fewer-than-three-zones", {"zones": 2}, "Config key 'airflow-platform:zones' must be at least 3 in production (got 2)."),
    ("without-multi-az", {"database": {"multiAz": False}}, "Config key 'airflow-platform:database.multiAz' must be true in production (got false)."),
    ("without-deletion-protection", {"database": {"deletionProtection": False}},
     "Config key 'airflow-platform:database.deletionProtection' must be true in production (got false)."),
    ("short-backups", {"database": {"backupRetentionDays": 7}},
     "Config key 'airflow-platform:database.backupRetentionDays' must be at least 14 in production (got 7)."),
    ("single-nat", {"network": {"natGateways": "single"}},
     "Config key 'airflow-platform:network.natGateways' must be per-zone in production, so losing a zone does not cut the others' egress (got \"single\")."),
    ("in-cluster-broker", {"broker": {"mode": "in-cluster"}},
     "Config key 'airflow-platform:broker.mode' must be elasticache in production, so the broker survives a zone loss (got \"in-cluster\")."),
    ("unprotected", {"protectStatefulResources": False},
     "Config key 'airflow-platform:protectStatefulResources' must be true in production (got false)."),
    ("node-group-below-zone-count", {"cluster": {"nodeGroups": {"system": {"minSize": 2, "desiredSize": 3}}}},
     "Config key 'airflow-platform:cluster.nodeGroups.system.minSize' must be at least the zone count (3) in production, so every zone has a node (got 2)."),
    ("spot-workers", {"karpenter": {"nodePools": {"workers": {"capacityTypes": ["spot", "on-demand"]}}}},
     "Config key 'airflow-platform:karpenter.nodePools.workers.capacityTypes' must be [on-demand] in production: a reclaimed Spot node cuts "
     "every running task of its workers short (got ['spot', 'on-demand'])."),
]


class TestProductionRules:
    """Tests the rules that only production stacks must follow."""

    def test_prod_ready_config_passes(self):
        """The reference production config used below is itself valid."""
        assert parse(PROD_READY).production is True

    @pytest.mark.parametrize("change, sentence", [r[1:] for r in PRODUCTION_REFUSALS], ids=[r[0] for r in PRODUCTION_REFUSALS])
    def test_production_refusal(self, change, sentence):
        """Each production rule is enforced with its own sentence."""
        raw = {**PROD_READY, **change}
        if "cluster" in change:
            raw["cluster"] = change["cluster"]
        assert refusal(raw) == sentence

    @pytest.mark.parametrize("change", [r[1] for r in PRODUCTION_REFUSALS], ids=[r[0] for r in PRODUCTION_REFUSALS])
    def test_same_settings_allowed_outside_production(self, change):
        """Outside production the same settings are accepted."""
        parse({**PROD_READY, "environment": "staging", **change})


class TestEngineDecoding:
    """Tests turning the engine's string-valued config map into typed input."""

    def test_scalars_and_objects_are_decoded(self):
        """Numbers, booleans and objects arrive as JSON text; names stay strings even when they look like numbers."""
        raw = decode_stack_config({
            "aws:region": "eu-west-1", "airflow-platform:environment": "dev", "airflow-platform:owner": "1234",
            "airflow-platform:zones": "2", "airflow-platform:production": "false",
            "airflow-platform:database": '{"multiAz": true}', "airflow-platform:airflow": json.dumps(AIRFLOW),
        })
        assert raw == {"aws:region": "eu-west-1", "environment": "dev", "owner": "1234", "zones": 2, "production": False,
                       "database": {"multiAz": True}, "airflow": AIRFLOW}
        assert isinstance(parse(raw), PlatformConfig)

    def test_foreign_aws_key_refused(self):
        """aws:* keys other than the region would be ignored by the explicit provider, so they are refused."""
        with pytest.raises(ConfigError) as caught:
            decode_stack_config({"aws:region": "eu-west-1", "aws:profile": "admin"})
        assert str(caught.value) == (
            "Config key 'aws:profile' is not read by this program: the only aws key it uses is aws:region "
            "(give credentials through the environment, for example AWS_PROFILE).")

    def test_other_namespaces_ignored(self):
        """Keys of other packages (for example pulumi:*) are not ours to judge."""
        assert decode_stack_config({"pulumi:disable-default-providers": '["*"]'}) == {}


class TestSecretKeys:
    """Tests the keys that must be Pulumi secrets."""

    @pytest.mark.parametrize("receiver, other, other_key", [
        ("pagerduty", "opsgenieApiKey", "00000000-0000-4000-8000-000000000000"),
        ("opsgenie", "pagerDutyRoutingKey", "0123456789abcdef0123456789abcdef")], ids=["pagerduty-with-opsgenie-key", "opsgenie-with-pagerduty-key"])
    def test_credential_of_the_unchosen_pager_refused(self, receiver, other, other_key):
        """A pager credential for the receiver not chosen is refused: criticals would page nobody."""
        raw = {**MINIMAL, "alerting": {"criticalReceiver": receiver}}
        raw[other] = other_key
        with pytest.raises(ConfigError) as caught:
            parse(decode_stack_config({**{f"airflow-platform:{k}": json.dumps(v) if isinstance(v, dict) else v
                                          for k, v in raw.items() if k != "aws:region"}, "aws:region": "eu-west-1"},
                                      [f"airflow-platform:{other}"]))
        assert str(caught.value) == (f"Config key 'airflow-platform:{other}' must be unset while alerting.criticalReceiver is {receiver}: "
                                     "set that receiver's credential instead.")
        assert other_key not in str(caught.value)

    def test_malformed_secret_not_repeated(self):
        """A malformed secret is refused without echoing it."""
        values = {"aws:region": "eu-west-1", "airflow-platform:environment": "dev", "airflow-platform:owner": "x",
                  "airflow-platform:airflow": json.dumps(AIRFLOW), "airflow-platform:pagerDutyRoutingKey": "short-key"}
        with pytest.raises(ConfigError) as caught:
            parse(decode_stack_config(values, ["airflow-platform:pagerDutyRoutingKey"]))
        assert str(caught.value) == "Config key 'airflow-platform:pagerDutyRoutingKey' must be a 32-character PagerDuty Events v2 routing key."
