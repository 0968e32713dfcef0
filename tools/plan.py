"""The offline plan: run the program for a stack under mocks, print what it would build, write it as JSON.

    python -m tools.plan [STACK]          # Pulumi.<STACK>.yaml, default dev
    python -m tools.plan --file PATH     # any stack file; the stack name comes from Pulumi.<name>.yaml

The plan is then checked by the policy pack (policies/), with policies/config/<stack>.json's enforcement levels
(or --policy-config FILE), the way `pulumi preview --policy-pack policies` checks it.

Every Helm release is rendered with its real chart (tools/render.py) into build/<stack>/manifests/<release>/, one file
per object, and every rendered object and every Kubernetes object the program declares is validated for the cluster's
Kubernetes version.

No AWS account and no Pulumi CLI are needed. Exit status: 0 planned, 2 the stack's config or the policy config was
refused or a chart is missing, 3 a mandatory policy is violated, 4 an object would be refused by the API server.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

from components import capacity
from components.config import ConfigError, PlatformConfig
from policies.airflow_guard import model as guard
from policies.airflow_guard.catalog import POLICIES
from policies.airflow_guard.engine import PolicyConfigError, Violation, evaluate, load_config, stack_config
from tools import render as renders
from tools.offline import (ROOT, Plan, Resource, StackFileError, read_stack_file, refusal, run_stack_config, stack_file,
                           typed_config)
from tools.upstream import FETCH_COMMAND, UpstreamMissing

BUILD = ROOT / "build"

# The settings worth a person's glance, per resource type (paths into the resource's inputs).
KEY_SETTINGS: dict[str, list[str]] = {
    "aws:ec2/vpc:Vpc": ["cidrBlock"],
    "aws:ec2/subnet:Subnet": ["availabilityZone", "cidrBlock", "mapPublicIpOnLaunch"],
    "aws:ec2/natGateway:NatGateway": ["subnetId"],
    "aws:ec2/routeTable:RouteTable": ["routes"],
    "aws:ec2/vpcEndpoint:VpcEndpoint": ["serviceName", "vpcEndpointType"],
    "aws:ec2/flowLog:FlowLog": ["vpcId", "subnetId", "trafficType", "logDestination", "maxAggregationInterval"],
    "aws:cloudtrail/trail:Trail": ["name", "s3BucketName", "kmsKeyId", "enableLogFileValidation", "includeGlobalServiceEvents",
                                   "advancedEventSelectors"],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": ["rules"],
    "aws:kms/key:Key": ["enableKeyRotation", "deletionWindowInDays"],
    "aws:kms/alias:Alias": ["name"],
    "aws:cloudwatch/logGroup:LogGroup": ["name", "retentionInDays", "kmsKeyId"],
    "aws:eks/cluster:Cluster": ["name", "version", "vpcConfig.endpointPrivateAccess", "vpcConfig.endpointPublicAccess",
                                "vpcConfig.publicAccessCidrs", "encryptionConfig.provider.keyArn", "enabledClusterLogTypes",
                                "accessConfig.authenticationMode"],
    "aws:eks/nodeGroup:NodeGroup": ["instanceTypes", "capacityType", "amiType", "scalingConfig", "labels", "subnetIds"],
    "aws:ec2/launchTemplate:LaunchTemplate": ["blockDeviceMappings", "metadataOptions.httpTokens",
                                              "metadataOptions.httpPutResponseHopLimit"],
    "aws:eks/addon:Addon": ["addonName", "addonVersion", "serviceAccountRoleArn"],
    "aws:eks/accessEntry:AccessEntry": ["principalArn"],
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": ["policyArn"],
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ["url"],
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ["role", "policyArn"],
    "aws:s3/bucketVersioning:BucketVersioning": ["versioningConfiguration.status"],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": ["rules"],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                               "restrictPublicBuckets"],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ["rule.objectOwnership"],
    "aws:s3/bucketObjectv2:BucketObjectv2": ["key", "sourceHash"],
    "aws:rds/instance:Instance": ["engine", "engineVersion", "instanceClass", "multiAz", "allocatedStorage", "maxAllocatedStorage",
                                  "storageType", "storageEncrypted", "kmsKeyId", "publiclyAccessible", "backupRetentionPeriod",
                                  "deletionProtection", "skipFinalSnapshot", "performanceInsightsEnabled", "monitoringInterval",
                                  "password"],
    "aws:rds/parameterGroup:ParameterGroup": ["family", "parameters"],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ["securityGroupId", "fromPort", "referencedSecurityGroupId", "cidrIpv4"],
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ["securityGroupId", "fromPort", "referencedSecurityGroupId"],
    "aws:lb/loadBalancer:LoadBalancer": ["name", "internal", "subnets", "dropInvalidHeaderFields", "desyncMitigationMode",
                                         "enableDeletionProtection"],
    "aws:lb/listener:Listener": ["port", "protocol", "sslPolicy", "certificateArn", "defaultActions"],
    "aws:lb/listenerRule:ListenerRule": ["priority", "conditions", "actions"],
    "aws:lb/targetGroup:TargetGroup": ["port", "targetType", "healthCheck.path"],
    "aws:acm/certificate:Certificate": ["domainName", "subjectAlternativeNames", "validationMethod"],
    "aws:route53/record:Record": ["name", "type", "zoneId"],
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding": ["metadata.namespace", "spec.serviceRef", "spec.targetGroupARN"],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        "engine", "engineVersion", "nodeType", "numCacheClusters", "preferredCacheClusterAzs", "automaticFailoverEnabled",
        "multiAzEnabled", "transitEncryptionEnabled", "atRestEncryptionEnabled", "kmsKeyId", "authToken"],
    "aws:sns/topic:Topic": ["kmsMasterKeyId"],
    "aws:cloudwatch/metricAlarm:MetricAlarm": ["metricName", "statistic", "comparisonOperator", "threshold", "evaluationPeriods",
                                               "alarmActions", "okActions"],
    "pulumi:providers:aws": ["region", "defaultTags.tags"],
}
# Components in the order the platform composes them.
COMPONENT_ORDER = ["pulumi:providers:aws", "Network", "FlowLogs", "Cluster", "DagStorage", "DagAudit", "MetadataDatabase", "Alarms",
                   "Broker", "Observability", "Keda", "AirflowAccess", "Airflow", "TaskPods", "Karpenter", "LoadBalancerController", "Entry", "NetworkPolicies"]
# The chart values worth a glance in the plan (paths into the release's values).
RELEASE_VALUES = ["executor", "airflowVersion", "workers.keda", "workers.terminationGracePeriodSeconds", "workers.podAnnotations",
                  "workers.podDisruptionBudget", "workers.resources", "scheduler.replicas", "apiServer.replicas", "triggerer.replicas",
                  "dagProcessor.replicas", "config.celery", "config.core.parallelism", "config.logging.remote_base_log_folder",
                  "config.secrets.backend_kwargs", "config.metrics.otel_host", "statsd.enabled", "pgbouncer.enabled", "redis.enabled",
                  "dags.persistence", "databaseCleanup", "crds.install", "mode", "image", "config.service.pipelines.metrics",
                  "prometheus.prometheusSpec.retention", "prometheus.prometheusSpec.storageSpec", "prometheus.prometheusSpec.replicas",
                  "alertmanager.alertmanagerSpec.replicas"]


def _get(inputs: dict, path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if isinstance(value, str) and value.startswith("{"):  # provider inputs arrive JSON-encoded
            value = json.loads(value)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class _Namer:
    """Shows ids and ARNs of other resources by their resource name, which a person can find in the plan."""

    def __init__(self, plan: Plan):
        self.names: dict[str, str] = {}
        for resource in plan.resources:
            for value in (resource.id, resource.outputs.get("arn"), resource.outputs.get("keyId")):
                if isinstance(value, str) and len(value) > 8:
                    self.names[value] = resource.name
            if resource.type == "aws:eks/cluster:Cluster":
                # EKS creates this group itself; nodes and pods use it.
                self.names[resource.outputs["vpcConfig"]["clusterSecurityGroupId"]] = f"security group of {resource.name}"

    def replace_in(self, text: str) -> str:
        """Name the ARNs inside a policy line; longest first, so an ARN is never cut by a shorter one."""
        for value in sorted((v for v in self.names if v.startswith("arn:")), key=len, reverse=True):
            text = text.replace(value, f"<{self.names[value]}>")
        return text

    def show(self, value: Any, nested: bool = False) -> str:
        if isinstance(value, str):
            if value in self.names:
                return f"<{self.names[value]}>"
            return json.dumps(value) if nested else value  # inside a map or list, "true" the string must not read as true
        if isinstance(value, list):
            return "[" + ", ".join(self.show(v, True) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {self.show(v, True)}" for k, v in value.items()) + "}"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # the wire format has only floats
        return json.dumps(value)


def _policy_summary(document: str) -> str:
    """One line per statement: effect, actions, resources, and who (for trust policies)."""
    lines = []
    for statement in json.loads(document)["Statement"]:
        actions = statement.get("Action")
        principal = statement.get("Principal")
        who = ""
        if isinstance(principal, dict):
            who = " by " + ", ".join(f"{v}" for v in principal.values())
        conditions = statement.get("Condition", {})
        when = "; ".join(f"{var} {test} {vals}" for test, pairs in conditions.items() for var, vals in pairs.items())
        resources = statement.get("Resource", "")
        lines.append(f"{statement['Effect']} {actions}{' on ' + str(resources) if resources else ''}{who}"
                     f"{' when ' + when if when else ''}")
    return "\n".join(lines)


def _network_policy(inputs: dict) -> list[str]:
    """Which pods a NetworkPolicy isolates for ingress, and each connection it admits to them (none: a default-deny)."""
    def labels(selector: dict) -> str:
        return ",".join(f"{k}={v}" for k, v in selector.get("matchLabels", {}).items())

    def peer(entry: dict) -> str:
        if "ipBlock" in entry:
            return entry["ipBlock"]["cidr"]
        selected = labels(entry.get("podSelector", {}))
        namespace = entry.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name",
                                                                                   inputs["metadata"]["namespace"])
        return f"{'pods ' + selected if selected else 'every pod'} of {namespace}"

    spec = inputs["spec"]
    selected = labels(spec["podSelector"])
    lines = [f"isolates {'pods ' + selected if selected else 'every pod'} in {inputs['metadata']['namespace']}"]
    for rule in spec.get("ingress", []):
        ports = ", ".join(f"{int(p['port'])}/{p['protocol']}" for p in rule["ports"])
        lines.append(f"admits {ports} from {', '.join(peer(p) for p in rule['from'])}")
    return lines


def _settings(resource: Resource, namer: _Namer) -> list[str]:
    if resource.type == "aws:iam/role:Role":
        return ["trust: " + namer.replace_in(line) for line in _policy_summary(resource.inputs["assumeRolePolicy"]).splitlines()]
    if resource.type in ("aws:iam/rolePolicy:RolePolicy", "aws:s3/bucketPolicy:BucketPolicy"):
        return [namer.replace_in(line) for line in _policy_summary(resource.inputs["policy"]).splitlines()]
    if resource.type == "kubernetes:helm.sh/v3:Release":
        inputs = resource.inputs
        source = f" from {inputs['repositoryOpts']['repo']}" if inputs.get("repositoryOpts") else ""  # an oci:// chart names its registry
        lines = [f"chart {inputs['chart']} {inputs['version']}{source} into namespace {inputs['namespace']}"]
        values = inputs.get("values", {})
        lines += [f"{path}={namer.show(_get(values, path))}" for path in RELEASE_VALUES if _get(values, path) is not None]
        if "alertmanager" in values:
            lines += _routes(values["alertmanager"]["config"])
        return lines
    if resource.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
        return _network_policy(resource.inputs)
    if resource.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule":
        return [f"alert {rule['alert']} [{rule['labels']['severity']}] for {rule['for']}: {rule['expr']}"
                for group in resource.inputs["spec"]["groups"] for rule in group["rules"]]
    shown = []
    for path in KEY_SETTINGS.get(resource.type, []):
        value = _get(resource.inputs, path)
        if value is None:
            continue
        secret = any(p == path or p.startswith(path + ".") for p in resource.secret_inputs)
        shown.append(f"{path}={'[secret]' if secret else namer.show(value)}")
    return [", ".join(shown)] if shown else []


def capacity_summary(cfg: PlatformConfig) -> str:
    """The capacity contract's figures for this stack, as the config validation computed them."""
    airflow = cfg.airflow
    budget = capacity.connection_budget(airflow, cfg.database.instance_class)
    slots = airflow.workers.max_replicas * airflow.workers.concurrency
    route = f"through {airflow.pgbouncer.replicas} PgBouncers" if airflow.pgbouncer.enabled else "direct"
    memory = capacity.worker_memory_budget(airflow.workers)
    pools = "; ".join(
        f"{pool.pool} nodes at most {pool.nodes_at_minimum} at the minimum and {pool.nodes_at_maximum} at the maximum, "
        f"needing {pool.cpu_needed:.1f} of {pool.cpu_limit} cores and {pool.memory_needed_gib:.1f} of {pool.memory_limit_gib} GiB"
        for pool in (capacity.worker_pool_budget(cfg), capacity.task_pool_budget(cfg)))
    return (f"capacity: worker slots {slots} of parallelism {airflow.parallelism}; DB connections {budget.to_database} ({route}) "
            f"of {budget.available} that {cfg.database.instance_class} leaves Airflow; worker memory {memory.arithmetic} "
            f"of {memory.limit_mib}\nnode pools: {pools}")


def _routes(config: dict) -> list[str]:
    """Alertmanager's routes and what each receiver reaches."""
    lines = [f"route (default) -> {config['route']['receiver']}"]
    for route in config["route"]["routes"]:
        lines.append(f"route {', '.join(route['matchers'])} -> {route['receiver']}{' (and continue)' if route.get('continue') else ''}")
    for receiver in config["receivers"]:
        reaches = [f"slack {c['channel']}" for c in receiver.get("slack_configs", [])]
        reaches += ["PagerDuty"] * len(receiver.get("pagerduty_configs", [])) + ["Opsgenie"] * len(receiver.get("opsgenie_configs", []))
        reaches += [f"webhook {c['url']}" for c in receiver.get("webhook_configs", [])]
        nobody = "drops what it gets" if receiver["name"] == "null" else "nobody yet (set its credentials as stack secrets)"
        lines.append(f"receiver {receiver['name']}: {', '.join(reaches) if reaches else nobody}")
    return lines


def render(plan: Plan, cfg: Optional[PlatformConfig] = None) -> str:
    namer = _Namer(plan)
    lines = [f"Offline plan of stack '{plan.stack}': {len(plan.resources)} resources (mocked AWS, nothing created)"]
    roots = [r for r in plan.resources if r.type == "airflow-platform:index:Platform"]
    for platform in roots:
        lines.append(f"zones: {', '.join(plan.outputs.get('zones', []))}")
        if cfg is not None:
            lines.append(capacity_summary(cfg))
        def rank(resource: Resource) -> int:
            kind = resource.type.split(":")[-1]
            return COMPONENT_ORDER.index(kind) if kind in COMPONENT_ORDER else (
                0 if resource.type in COMPONENT_ORDER else len(COMPONENT_ORDER))

        for component in sorted(plan.children(platform), key=rank):
            members = plan.descendants(component)
            kind = component.type.split(":")[-1]
            lines.append("")
            lines.append(f"{kind} {component.name} ({len(members) or 1} resources)")
            for resource in members or [component]:
                short = resource.type.split(":")[-1]
                flag = "  [protected]" if resource.protect else ""
                lines.append(f"  {short} {resource.name}{flag}")
                if resource.type == "aws:iam/role:Role" and resource.inputs.get("name"):
                    lines.append(f"      name={resource.inputs['name']}")
                lines.extend(f"      {setting}" for setting in _settings(resource, namer))
    lines.append("")
    lines.append("outputs:")
    for key, value in plan.outputs.items():
        shown = "[secret]" if key in plan.secret_outputs else ("(kubeconfig, exec: aws eks get-token)" if key == "kubeconfig" else json.dumps(value))
        lines.append(f"  {key}: {shown}")
    return "\n".join(lines)


def policy_resources(plan: Plan) -> list[guard.Resource]:
    """The plan's resources as the policy pack sees them in a preview: inputs, parent, property dependencies and the
    provider's properties."""
    providers = {r.urn: r.inputs for r in plan.resources if r.type.startswith("pulumi:providers:")}
    return [guard.Resource(r.type, r.name, r.urn, r.inputs, r.parent or None, r.property_dependencies,
                           providers.get(r.provider.rsplit("::", 1)[0], {})) for r in plan.resources]


def render_violations(violations: list[Violation], source: str) -> str:
    mandatory = sum(v.mandatory for v in violations)
    lines = [f"policies ({source}): {len(POLICIES)} checked, {mandatory} mandatory violation{'s' * (mandatory != 1)}, "
             f"{len(violations) - mandatory} advisory"]
    for violation in violations:
        level = "MANDATORY" if violation.mandatory else "advisory"
        lines.append(f"  {level} {violation.policy.name}: {violation.message}")
        lines.append(f"      fix: {violation.policy.remediation}")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def render_manifests(plan: Plan, rendered: list[renders.RenderedRelease], program_errors: list[str], directory: Path) -> str:
    """Per release: its chart and where it came from, the object count, and whether every object validates."""
    version = renders.kubernetes_version(plan)
    lines = [f"manifests (rendered by the charts, validated for Kubernetes {version}, unknown fields refused): {_shown(directory)}/"]

    def verdict(errors: list[str]) -> str:
        return "all valid" if not errors else f"{len(errors)} refused"

    for release in rendered:
        line = f"  {release.name}: {release.chart}, {len(release.objects)} objects, {verdict(release.errors)}"
        if release.omitted:
            line += (f"; not rendered: its subcharts {', '.join(release.omitted)}, which that copy lacks "
                     f"(`{FETCH_COMMAND}` pulls the published chart, which carries them)")
        lines.append(line)
        lines.extend(f"      {error}" for error in release.errors)
    lines.append(f"  program: {len(renders.program_objects(plan))} objects declared directly, {verdict(program_errors)}")
    lines.extend(f"      {error}" for error in program_errors)
    return "\n".join(lines)


def write(plan: Plan) -> Path:
    directory = BUILD / plan.stack
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "resources.json"
    path.write_text(json.dumps(plan.to_json(), indent=2, sort_keys=True))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev", help="stack name: plans Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--file", type=Path, help="plan this stack file instead (named Pulumi.<stack>.yaml)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary line and the policy findings")
    parser.add_argument("--policy-config", type=Path, help="policy config file (default: policies/config/<stack>.json if present)")
    options = parser.parse_args(argv)

    path = options.file or stack_file(options.stack)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml") if options.file else options.stack
    if not path.is_file():
        print(f"No stack file {path}: create it, or name one of: "
              + ", ".join(sorted(p.name[7:-5] for p in ROOT.glob("Pulumi.*.yaml"))), file=sys.stderr)
        return 2
    try:
        policy_config = load_config(options.policy_config) if options.policy_config else stack_config(stack)
    except (OSError, PolicyConfigError) as error:
        print(f"policy config: {error}", file=sys.stderr)
        return 2
    try:
        config = read_stack_file(path)
        plan = run_stack_config(config, stack)
    except (StackFileError, ConfigError) as error:
        print(refusal(path, error), file=sys.stderr)
        return 2
    try:
        violations = evaluate(policy_resources(plan), policy_config)
    except PolicyConfigError as error:
        print(f"policy config: {error}", file=sys.stderr)
        return 2
    try:
        rendered = renders.render_plan(plan)
    except UpstreamMissing as error:
        print(f"manifests: {error}", file=sys.stderr)
        return 2
    program_errors = renders.validate(plan, rendered)
    text = render(plan, typed_config(config))
    print(text.splitlines()[0] if options.quiet else text)
    written = write(plan)
    print(f"\nfull resource list: {_shown(written)}")
    manifests = BUILD / plan.stack / "manifests"
    renders.write_manifests(rendered, manifests)
    print("\n" + render_manifests(plan, rendered, program_errors, manifests))
    source = options.policy_config or (f"policies/config/{stack}.json" if policy_config else "the pack's defaults, all advisory")
    print("\n" + render_violations(violations, str(source)))
    if program_errors or any(release.errors for release in rendered):
        return 4
    return 3 if any(v.mandatory for v in violations) else 0


if __name__ == "__main__":
    # A short-lived command: the cyclic garbage collector would spend a third of the run walking the
    # ~100k objects the provider SDKs create at import, and tearing them down at exit costs as much again.
    # Reference counting still frees memory; once the plan is written there is nothing left to clean up.
    gc.disable()
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
