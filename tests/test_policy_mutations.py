"""Tests the pack against the real stacks: dev and prod pass, and each guarded setting of prod, made unsafe in a copy
of its resources, is flagged by the expected policy and by no other."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any, Callable

import pytest

from components.config import SECRET_KEYS
from policies.airflow_guard.catalog import BY_NAME
from policies.airflow_guard.engine import CONFIG_DIR, evaluate, load_config
from policies.airflow_guard.model import Resource
from tests.conftest import stack_config, variant_config
from tools.offline import run_stack_config
from tools.plan import policy_resources

PROD_POLICY_CONFIG = load_config(CONFIG_DIR / "prod.json")
DEV_POLICY_CONFIG = load_config(CONFIG_DIR / "dev.json")
# Every receiver credential but Opsgenie's (prod pages through PagerDuty), so the Slack secret and webhook exist too.
RECEIVER_SECRETS = [key for key in SECRET_KEYS if key != "opsgenieApiKey"]


@pytest.fixture(scope="module")
def prod_with_secrets() -> list[Resource]:
    """The prod stack with every receiver credential set, as the pack sees it."""
    config = stack_config("prod")
    config.update({f"airflow-platform:{key}": {"secure": "v1:offline"} for key in RECEIVER_SECRETS})
    return policy_resources(run_stack_config(config, "prod"))


Change = Callable[[list[Resource]], list[Resource]]


def props(name: str, edit: Callable[[dict[str, Any]], Any]) -> Change:
    """Edit one resource's props in place (on a deep copy)."""
    def change(resources: list[Resource]) -> list[Resource]:
        result = []
        for resource in resources:
            if resource.name == name:
                changed = copy.deepcopy(dict(resource.props))
                edit(changed)
                resource = dataclasses.replace(resource, props=changed)
            result.append(resource)
        assert any(r.name == name for r in resources), name
        return result
    return change


def document(key: str, edit: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    """Edit the JSON policy document held in props[key]."""
    def change(p: dict[str, Any]) -> None:
        parsed = json.loads(p[key])
        edit(parsed)
        p[key] = json.dumps(parsed)
    return change


def drop(name: str) -> Change:
    return lambda resources: [r for r in resources if r.name != name]


def first_subnets(name: str, count: int) -> Change:
    """Keep only the first `count` subnets a resource's subnetIds were computed from."""
    def change(resources: list[Resource]) -> list[Resource]:
        return [dataclasses.replace(r, property_dependencies={**r.property_dependencies,
                                                              "subnetIds": list(r.property_dependencies["subnetIds"])[:count]})
                if r.name == name else r for r in resources]
    return change


def provider_default_tags(tags: dict[str, str]) -> Change:
    """The AWS provider's default tags replaced, for the provider and every resource created through it."""
    def change(resources: list[Resource]) -> list[Resource]:
        old = next(r.props for r in resources if r.type == "pulumi:providers:aws")
        new = {**old, "defaultTags": json.dumps({"tags": tags})}
        return [dataclasses.replace(r, props=new) if r.props is old else
                dataclasses.replace(r, provider_props=new) if r.provider_props is old else r for r in resources]
    return change


def values(edit: Callable[[dict[str, Any]], Any]) -> Change:
    return props("airflow-prod-airflow-release", lambda p: edit(p["values"]))


def statement(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda parsed: parsed["Statement"][index].update(fields)


def alert_routes(edit: Callable[[list[dict[str, Any]]], Any]) -> Change:
    return props("airflow-prod-observability-kube-prometheus-stack", lambda p: edit(p["values"]["alertmanager"]["config"]["route"]["routes"]))


def karpenter_values(edit: Callable[[dict[str, Any]], Any]) -> Change:
    return props("airflow-prod-karpenter-release", lambda p: edit(p["values"]))


def pool_template(pool: str, **fields: Any) -> Change:
    return props(f"airflow-prod-karpenter-{pool}-pool", lambda p: p["spec"]["template"]["spec"].update(fields))


def entry(part: str, edit: Callable[[dict[str, Any]], Any]) -> Change:
    return props(f"airflow-prod-entry-{part}", edit)


def rule_on_listener(rule: str, listener: str) -> Change:
    """The entry's listener rule attached to another of its listeners (its listener_arn computed from that one)."""
    def change(resources: list[Resource]) -> list[Resource]:
        urn = next(r.urn for r in resources if r.name == f"airflow-prod-entry-{listener}")
        return [dataclasses.replace(r, property_dependencies={**r.property_dependencies, "listenerArn": [urn]})
                if r.name == f"airflow-prod-entry-{rule}" else r for r in resources]
    return change


def grafana_values(edit: Callable[[dict[str, Any]], Any]) -> Change:
    return props("airflow-prod-observability-kube-prometheus-stack", lambda p: edit(p["values"]["grafana"]))


def literal_client_secret(v: dict[str, Any]) -> None:
    """The FAB config's client secret written out instead of read from the environment."""
    config = v["apiServer"]["apiServerConfig"]
    v["apiServer"]["apiServerConfig"] = re.sub(r"os\.environ\[[^\]]+\]", "'not-so-secret'", config)
    assert v["apiServer"]["apiServerConfig"] != config


def dag_trail_fields(edit: Callable[[dict[str, Any]], Any]) -> Change:
    """Edit each field selector of the DAG audit trail's one advanced event selector."""
    return props("airflow-prod-dag-audit-trail", lambda p: [edit(f) for f in p["advancedEventSelectors"][0]["fieldSelectors"]])


WORKER_TRUST_SUB = "oidc.eks.eu-west-1.amazonaws.com/id/1FDCD307E35606C5A822B8728754E862:sub"
ENTRY_TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/airflow-prod-airflow-b778803e/aa1601fce7682309"
MUTATIONS: dict[str, tuple[Change, str]] = {
    "versioning-suspended": (props("airflow-prod-dags-versioning", lambda p: p["versioningConfiguration"].update(status="Suspended")),
                             "s3-bucket-versioning-enabled"),
    "sse-s3-instead-of-kms": (props("airflow-prod-dags-encryption", lambda p: p["rules"][0]["applyServerSideEncryptionByDefault"].update(
        sseAlgorithm="AES256")), "s3-bucket-sse-kms"),
    "public-acls-allowed": (props("airflow-prod-dags-public-access-block", lambda p: p.update(blockPublicAcls=False)),
                            "s3-bucket-public-access-blocked"),
    "plain-http-allowed": (props("airflow-prod-dags-tls-only", document("policy", lambda d: d["Statement"][0]["Condition"]["Bool"].update(
        {"aws:SecureTransport": "true"}))), "s3-bucket-tls-only"),
    "public-read-acl": (props("airflow-prod-dags-bucket", lambda p: p.update(acl="public-read")), "s3-no-public-acl-or-policy"),
    "worker-policy-wildcard-action": (props("airflow-prod-access-worker-policy", document("policy", statement(1, Action=["s3:*"]))),
                                      "iam-no-wildcard-action"),
    "worker-policy-writes-everywhere": (props("airflow-prod-access-worker-policy", document("policy", statement(1, Resource="*"))),
                                        "iam-no-wildcard-resource-on-write"),
    "team-writes-another-prefix": (props("airflow-prod-dags-team-analytics-policy", document("policy", statement(
        1, Resource="arn:aws:s3:::airflow-prod-dags-bucket-eba44d3/teams/marketing/*"))), "iam-team-role-own-prefix"),
    "team-trusts-any-repository": (props("airflow-prod-dags-team-analytics", document("assumeRolePolicy", lambda d: d["Statement"][0].update(
        Condition={"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                   "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example-org/*"}}))),
        "iam-github-oidc-trust-one-repository"),
    "irsa-trusts-two-namespaces": (props("airflow-prod-access-worker", document("assumeRolePolicy", lambda d: d["Statement"][0]["Condition"][
        "StringEquals"].update({WORKER_TRUST_SUB: ["system:serviceaccount:airflow:airflow-worker", "system:serviceaccount:default:default"]}))),
        "iam-irsa-trust-one-namespace"),
    "role-inline-and-separate-policies": (props("airflow-prod-access-worker", lambda p: p.update(inlinePolicies=[{
        "name": "extra", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::airflow-prod-dags-bucket-eba44d3/logs/*"}]})}])),
        "iam-role-no-policy-management-conflicts"),
    "key-not-rotated": (props("airflow-prod-access-secrets-key", lambda p: p.update(enableKeyRotation=False)), "kms-key-rotation-enabled"),
    "key-lockout-bypassed": (props("airflow-prod-access-secrets-key", lambda p: p.update(bypassPolicyLockoutSafetyCheck=True)),
                             "kms-key-no-lockout-bypass"),
    "key-policy-removed": (props("airflow-prod-dags-key", lambda p: p.pop("policy")), "kms-key-explicit-policy"),
    "key-decrypt-for-anyone": (props("airflow-prod-access-secrets-key", document("policy", lambda d: d["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}))), "kms-key-explicit-policy"),
    "key-usable-outside-s3": (props("airflow-prod-dags-key", document("policy", lambda d: d["Statement"][1].pop("Condition"))),
                              "kms-key-explicit-policy"),
    "broker-open-to-internet": (props("airflow-prod-broker-from-cluster", lambda p: (p.pop("referencedSecurityGroupId"),
                                                                                     p.update(cidrIpv4="0.0.0.0/0"))),
                                "security-group-no-public-ingress"),
    "broker-inline-rules-too": (props("airflow-prod-broker-sg", lambda p: p.update(ingress=[
        {"protocol": "tcp", "fromPort": 6379, "toPort": 6379, "securityGroups": ["sg-1"]}])), "security-group-no-rule-management-conflicts"),
    "db-unencrypted": (props("airflow-prod-db-postgres", lambda p: p.update(storageEncrypted=False)), "rds-storage-encrypted"),
    "db-public": (props("airflow-prod-db-postgres", lambda p: p.update(publiclyAccessible=True)), "rds-not-publicly-accessible"),
    "db-backups-3-days": (props("airflow-prod-db-postgres", lambda p: p.update(backupRetentionPeriod=3)), "rds-backup-retention"),
    "db-single-zone": (props("airflow-prod-db-postgres", lambda p: p.update(multiAz=False)), "rds-multi-az"),
    "db-deletable": (props("airflow-prod-db-postgres", lambda p: p.update(deletionProtection=False)), "rds-deletion-protection"),
    "db-no-performance-insights": (props("airflow-prod-db-postgres", lambda p: p.update(performanceInsightsEnabled=False)),
                                   "rds-performance-insights"),
    "db-tls-optional": (props("airflow-prod-db-params", lambda p: p["parameters"][0].update(value="0")), "rds-tls-enforced"),
    "db-cpu-alarm-silent": (props("airflow-prod-alarms-db-cpu", lambda p: p.update(actionsEnabled=False)), "rds-alarms-with-actions"),
    "db-connections-alarm-removed": (drop("airflow-prod-alarms-db-connections"), "rds-alarms-with-actions"),
    "api-open-to-world": (props("airflow-prod-cluster-eks", lambda p: p["vpcConfig"].update(endpointPublicAccess=True)),
                          "eks-endpoint-not-public"),
    "secrets-unencrypted": (props("airflow-prod-cluster-eks", lambda p: p.pop("encryptionConfig")), "eks-secrets-encryption"),
    "audit-log-off": (props("airflow-prod-cluster-eks", lambda p: p["enabledClusterLogTypes"].remove("audit")), "eks-control-plane-logging"),
    "system-nodes-in-two-zones": (first_subnets("airflow-prod-cluster-system", 2), "eks-node-groups-span-zones"),
    "cluster-logs-forever": (props("airflow-prod-cluster-logs", lambda p: p.pop("retentionInDays")), "cloudwatch-log-group-retention-and-kms"),
    "alarm-topic-unencrypted": (props("airflow-prod-alarms-topic", lambda p: p.pop("kmsMasterKeyId")), "sns-topic-encrypted"),
    "broker-plaintext": (props("airflow-prod-broker-group", lambda p: p.update(transitEncryptionEnabled=False)), "elasticache-encrypted"),
    "slack-secret-default-key": (props("airflow-prod-access-slack", lambda p: p.pop("kmsKeyId")), "secretsmanager-secret-cmk"),
    "imdsv1-allowed": (props("airflow-prod-cluster-system-lt", lambda p: p["metadataOptions"].update(httpTokens="optional")),
                       "launch-template-imdsv2-encrypted-volumes"),
    "chart-range": (props("airflow-prod-airflow-release", lambda p: p.update(version="~1.19")), "helm-chart-version-pinned"),
    "secret-in-values": (values(lambda v: v.update(webserverSecretKey="not-so-secret")), "helm-values-no-secret-literals"),
    "kubernetes-executor": (values(lambda v: v.update(executor="KubernetesExecutor")), "airflow-celery-executor"),
    "keda-off": (values(lambda v: v["workers"]["keda"].update(enabled=False)), "airflow-keda-autoscaling"),
    "keda-through-pgbouncer": (values(lambda v: v["workers"]["keda"].pop("usePgbouncer")), "airflow-keda-not-through-pgbouncer"),
    "no-memory-recycling": (props("airflow-prod-airflow-celery-config", lambda p: p["data"].update({
        "airflow_platform_celery.py": p["data"]["airflow_platform_celery.py"].replace('"worker_max_memory_per_child"', '"worker_prefetch_multiplier"')})),
        "airflow-celery-worker-recycling"),
    "default-grace-period": (values(lambda v: v["workers"].pop("terminationGracePeriodSeconds")), "airflow-worker-grace-period"),
    "dag-processor-without-sync-init": (values(lambda v: v["dagProcessor"].pop("extraInitContainers")), "airflow-dag-sync"),
    "db-cleanup-off": (values(lambda v: v["databaseCleanup"].update(enabled=False)), "airflow-db-cleanup"),
    "workers-disruptable": (values(lambda v: v["workers"]["podAnnotations"].pop("karpenter.sh/do-not-disrupt")), "airflow-workers-not-disrupted"),
    "statsd-back-on": (values(lambda v: v["statsd"].update(enabled=True)), "airflow-statsd-off-with-otel"),
    "scheduler-alert-removed": (props("airflow-prod-observability-airflow-rules", lambda p: p["spec"]["groups"][0]["rules"].pop(0)),
                                "observability-required-alerts"),
    "critical-route-removed": (alert_routes(lambda routes: routes.pop(2)), "alertmanager-critical-route"),
    "owner-tag-dropped": (provider_default_tags({"environment": "prod"}), "aws-required-tags"),
    "node-grace-shorter-than-workers": (pool_template("workers", terminationGracePeriod="90m"), "karpenter-node-grace-covers-workers"),
    "workers-outlast-node-grace": (values(lambda v: v["workers"].update(terminationGracePeriodSeconds=14400)),
                                   "karpenter-node-grace-covers-workers"),
    "task-pool-unbounded-memory": (props("airflow-prod-karpenter-tasks-pool", lambda p: p["spec"]["limits"].pop("memory")),
                                   "karpenter-node-pool-limits"),
    "node-class-imdsv1": (props("airflow-prod-karpenter-workers-class", lambda p: p["spec"]["metadataOptions"].update(httpTokens="optional")),
                          "karpenter-node-class-hardened"),
    "health-events-not-queued": (drop("airflow-prod-karpenter-scheduled-change-target"), "karpenter-interruption-queue"),
    "interruption-queue-open-to-account": (props("airflow-prod-karpenter-queue-policy", document("policy", lambda d: d["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sqs:SendMessage",
         "Resource": "arn:aws:sqs:eu-west-1:123456789012:queue/airflow-prod-karpenter"}))), "karpenter-interruption-queue"),
    "interruption-queue-unencrypted": (props("airflow-prod-karpenter-queue", lambda p: p.pop("kmsMasterKeyId")), "karpenter-interruption-queue"),
    "karpenter-single-replica": (karpenter_values(lambda v: v.update(replicas=1)), "karpenter-controller-off-karpenter-nodes"),
    "karpenter-controller-anywhere": (karpenter_values(lambda v: (v.update(affinity={"nodeAffinity": None}),
                                                                  v["nodeSelector"].pop("airflow-platform/pool"))),
                                      "karpenter-controller-off-karpenter-nodes"),
    "entry-internet-facing": (entry("alb", lambda p: p.update(internal=False)), "lb-internal"),
    "grafana-own-load-balancer": (grafana_values(lambda g: g.update(service={"type": "LoadBalancer"})), "lb-internal"),
    "entry-http-forwards": (entry("http", lambda p: p.update(defaultActions=[{"type": "forward", "targetGroupArn": ENTRY_TARGET_GROUP}])),
                            "lb-listener-https-tls13"),
    "entry-tls-2016": (entry("https", lambda p: p.update(sslPolicy="ELBSecurityPolicy-2016-08")), "lb-listener-https-tls13"),
    "entry-rule-on-http": (rule_on_listener("airflow-rule", "http"), "lb-listener-https-tls13"),
    "entry-open-to-internet": (entry("https-from-10-8-0-0-16", lambda p: p.update(cidrIpv4="0.0.0.0/0")), "security-group-no-public-ingress"),
    "sso-secret-in-airflow-config": (values(literal_client_secret), "sso-client-secret-not-in-values"),
    "sso-secret-in-grafana-ini": (grafana_values(lambda g: g["grafana.ini"]["auth.generic_oauth"].update(client_secret="not-so-secret")),
                                  "sso-client-secret-not-in-values"),
    "flow-log-dropped": (drop("airflow-prod-flow-logs-vpc"), "vpc-flow-logs"),
    "flow-log-rejects-only": (props("airflow-prod-flow-logs-vpc", lambda p: p.update(trafficType="REJECT")), "vpc-flow-logs"),
    "slow-statements-not-logged": (props("airflow-prod-db-params", lambda p: p.update(parameters=[
        parameter for parameter in p["parameters"] if parameter["name"] != "log_min_duration_statement"])), "rds-slow-statement-logging"),
    "db-log-group-left-to-rds": (drop("airflow-prod-db-logs-postgresql"), "rds-slow-statement-logging"),
    "dag-trail-reads-only": (dag_trail_fields(lambda f: f["field"] == "readOnly" and f.update(equals=["true"])), "s3-dag-bucket-audited"),
    "dag-trail-on-another-bucket": (dag_trail_fields(lambda f: f["field"] == "resources.ARN" and f.update(startsWiths=[
        "arn:aws:s3:::airflow-prod-dag-audit-bucket-3a8f4fa/teams/", "arn:aws:s3:::airflow-prod-dag-audit-bucket-3a8f4fa/shared/"])),
        "s3-dag-bucket-audited"),
    "dag-trail-unvalidated": (props("airflow-prod-dag-audit-trail", lambda p: p.update(enableLogFileValidation=False)), "s3-dag-bucket-audited"),
    "collector-by-tag": (props("airflow-prod-observability-otel-collector", lambda p: p["values"]["image"].update(tag="0.158.0")),
                         "image-pinned-by-digest"),
    "kps-grafana-image-dropped": (props("airflow-prod-observability-kube-prometheus-stack", lambda p: p["values"]["grafana"].pop("image")),
                                  "image-pinned-by-digest"),
    "task-metrics-by-tag": (props("airflow-prod-airflow-task-metrics-deployment", lambda p: p["spec"]["template"]["spec"]["containers"][0].update(
        image="apache/airflow:3.1.8")), "image-pinned-by-digest"),
}


def violated(resources: list[Resource], config: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for violation in evaluate(resources, config):
        assert violation.mandatory
        found.setdefault(violation.policy.name, []).append(violation.message)
    return found


class TestRealStacks:
    """Tests that the stacks as written raise no mandatory violation."""

    def test_prod_passes_every_policy(self, prod_plan):
        """Prod, under prod's config (everything mandatory), raises nothing at all."""
        assert violated(policy_resources(prod_plan), PROD_POLICY_CONFIG) == {}

    def test_prod_with_every_receiver_secret_passes(self, prod_with_secrets):
        """With Slack, PagerDuty, watchdog and alarm webhook credentials set, no secret leaks into values, and nothing fails."""
        assert violated(prod_with_secrets, PROD_POLICY_CONFIG) == {}

    @pytest.mark.parametrize("variant", ["prod-efs", "prod-celery-and-kubernetes", "prod-without-pgbouncer", "prod-existing-vpc"])
    def test_prod_variants_pass(self, variant):
        """The options a platform team may choose (EFS, both executors, no PgBouncer, its own VPC) keep prod free of violations."""
        stack, config = variant_config(variant)
        assert violated(policy_resources(run_stack_config(config, stack)), PROD_POLICY_CONFIG) == {}

    def test_dev_has_no_mandatory_violation(self, dev_plan):
        """Dev is advisory: its single-AZ, deletable database is not even reported; its silent alarms and its objinsync image
        by tag are, as advice."""
        found = evaluate(policy_resources(dev_plan), DEV_POLICY_CONFIG)
        assert [(v.level, v.policy.name, v.message) for v in found] == [
            ("advisory", "rds-alarms-with-actions", "instance airflow-dev-db-postgres's alarms airflow-dev-alarms-db-connections, "
             "airflow-dev-alarms-db-cpu, airflow-dev-alarms-db-free-storage, airflow-dev-alarms-db-freeable-memory, "
             "airflow-dev-alarms-db-read-latency, airflow-dev-alarms-db-write-latency notify nobody"),
            ("advisory", "image-pinned-by-digest", "release airflow-dev-airflow-release: workers.extraInitContainers[0].image and 11 more "
             "pull 123456789012.dkr.ecr.eu-west-1.amazonaws.com/objinsync:2.5.0, by tag alone")]

    def test_dev_under_prod_config_fails_as_prod_would(self, dev_plan):
        """Judged by prod's config, dev's database breaks exactly the prod-only rules, its node groups span 2 zones of 3, and
        its objinsync and in-cluster Redis are pulled by tag."""
        assert sorted({v.policy.name for v in evaluate(policy_resources(dev_plan), PROD_POLICY_CONFIG)}) == [
            "eks-node-groups-span-zones", "image-pinned-by-digest", "rds-alarms-with-actions", "rds-deletion-protection", "rds-multi-az"]


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mutation_is_flagged_by_its_policy_only(prod_with_secrets, mutation):
    """One unsafe setting in prod: its policy, and only its policy, reports it as mandatory."""
    change, expected = MUTATIONS[mutation]
    assert list(violated(change(prod_with_secrets), PROD_POLICY_CONFIG)) == [expected]


def test_every_policy_has_a_mutation():
    """Each policy guards at least one setting of the real prod stack."""
    assert sorted({policy for _, policy in MUTATIONS.values()}) == sorted(BY_NAME)
