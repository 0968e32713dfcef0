"""Tests every policy of the pack on one compliant and one violating input, asserting the exact messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.airflow_guard.catalog import BY_NAME
from policies.airflow_guard.engine import evaluate
from policies.airflow_guard.model import UNKNOWN, Resource
from policies.airflow_guard.tags import TAGGABLE_FILE, taggable_types
from tools.taggable_types import render as taggable_render

BUCKET = "aws:s3/bucket:Bucket"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
INSTANCE = "aws:rds/instance:Instance"
RELEASE = "kubernetes:helm.sh/v3:Release"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1111"
ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
TAGGED = {"defaultTags": json.dumps({"tags": {"environment": "prod", "owner": "data-platform"}})}


def res(type_: str, name: str, props: dict[str, Any] | None = None, deps: dict[str, list[Resource]] | None = None,
        provider: dict[str, Any] | None = None) -> Resource:
    """A resource as the pack sees it; `deps` maps a property to the resources it was computed from."""
    return Resource(type_, name, f"urn:pulumi:test::airflow-platform::{type_}::{name}", props or {}, None,
                    {key: [r.urn for r in sources] for key, sources in (deps or {}).items()}, provider or {})


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def on_bucket(bucket: Resource, type_: str, name: str, props: dict[str, Any]) -> Resource:
    return res(type_, name, {"bucket": "dags-1a2b", **props}, {"bucket": [bucket]})


def kms_rule(algorithm: str, key: str | None = KEY_ARN) -> dict[str, Any]:
    return {"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm, **({"kmsMasterKeyId": key} if key else {})}}


def trust(federated: str, tests: dict[str, dict[str, Any]]) -> str:
    return doc({"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": federated}, "Condition": tests})


def github_role(tests: dict[str, dict[str, Any]]) -> Resource:
    return res(ROLE, "ci-analytics", {"assumeRolePolicy": trust("arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", tests)})


def irsa_role(subjects: Any) -> Resource:
    return res(ROLE, "worker", {"assumeRolePolicy": trust(f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}", {
        "StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": subjects}})})


def team_role() -> Resource:
    return res(ROLE, "ci-analytics", {"name": "airflow-prod-ci-analytics", "tags": {"team": "analytics"}})


def team_policy(role: Resource, *statements: dict[str, Any]) -> Resource:
    return res(ROLE_POLICY, "ci-analytics-policy", {"role": "airflow-prod-ci-analytics", "policy": doc(*statements)}, {"role": [role]})


LIST_OWN = allow("s3:ListBucket", "arn:aws:s3:::dags", Condition={"StringLike": {"s3:prefix": ["teams/analytics/", "teams/analytics/*"]}})


def db(**props: Any) -> Resource:
    return res(INSTANCE, "db", props)


def alarm(instance: Resource, metric: str, **props: Any) -> Resource:
    return res("aws:cloudwatch/metricAlarm:MetricAlarm", metric.lower(), {
        "namespace": "AWS/RDS", "metricName": metric, "dimensions": {"DBInstanceIdentifier": "db-1"},
        "alarmActions": ["arn:aws:sns:eu-west-1:123456789012:alarms"], **props}, {"dimensions": [instance]})


def cluster(**props: Any) -> Resource:
    return res("aws:eks/cluster:Cluster", "eks", {
        "vpcConfig": {"endpointPrivateAccess": True, "endpointPublicAccess": False},
        "encryptionConfig": {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]},
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"], **props})


def node_group(*zones: str) -> list[Resource]:
    subnets = [res("aws:ec2/subnet:Subnet", f"private-{z[-1]}", {"availabilityZone": z}) for z in zones]
    return subnets + [res("aws:eks/nodeGroup:NodeGroup", "ng", {"subnetIds": [f"subnet-{z}" for z in zones]}, {"subnetIds": subnets})]


CELERY_MODULE = 'CELERY_CONFIG = {**DEFAULTS, "worker_max_tasks_per_child": 200, "worker_max_memory_per_child": 1572864}\n'
OBJINSYNC = {"command": ["/bin/objinsync"], "image": "objinsync@sha256:0"}


def airflow_values(**changes: Any) -> dict[str, Any]:
    """Chart values that keep every lesson; `changes` replace top-level keys."""
    sync = {"extraInitContainers": [{**OBJINSYNC, "args": ["pull", "--once", "s3://dags/teams", "/opt/airflow/dags"]},
                                    {**OBJINSYNC, "restartPolicy": "Always", "args": ["pull", "--interval", "30s", "s3://dags/teams", "/opt/airflow/dags"]}]}
    values = {
        "executor": "CeleryExecutor",
        "pgbouncer": {"enabled": True},
        "statsd": {"enabled": False},
        "databaseCleanup": {"enabled": True, "retentionDays": 90},
        "config": {"celery": {"celery_config_options": "airflow_platform_celery.CELERY_CONFIG"},
                   "metrics": {"otel_on": "True", "statsd_on": "False"}},
        "volumes": [{"name": "celery-config", "configMap": {"name": "celery-config"}}],
        "dagProcessor": sync,
        "workers": {**sync, "keda": {"enabled": True, "minReplicaCount": 1, "maxReplicaCount": 10, "usePgbouncer": False},
                    "terminationGracePeriodSeconds": 5400, "safeToEvict": False,
                    "podAnnotations": {"karpenter.sh/do-not-disrupt": "true", "airflow-platform/longest-task-minutes": "60"}},
    }
    values.update(changes)
    return values


def workers(**changes: Any) -> dict[str, Any]:
    return {**airflow_values()["workers"], **changes}


def airflow(values: dict[str, Any], version: str = "1.19.0", module: str = CELERY_MODULE) -> list[Resource]:
    config_map = res("kubernetes:core/v1:ConfigMap", "celery-config", {"metadata": {"name": "celery-config", "namespace": "airflow"},
                                                                       "data": {"airflow_platform_celery.py": module}})
    return [config_map, res(RELEASE, "airflow", {"chart": "airflow", "version": version, "namespace": "airflow", "values": values})]


ALERTS = ["AirflowSchedulerDown", "AirflowTriggererDown", "AirflowDagProcessorDown", "AirflowSchedulerLoopSlow", "AirflowNoCeleryWorker",
          "AirflowTaskQueuedTooLong", "AirflowDagParseSlow", "AirflowDagImportErrors", "AirflowDagSyncFailing", "AirflowTeamTaskFailures"]


def prometheus_rule(names: list[str]) -> Resource:
    return res("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "rules",
               {"spec": {"groups": [{"name": "airflow", "rules": [{"alert": n, "expr": "vector(1)"} for n in names]}]}})


def kube_prometheus_stack(routes: list[dict[str, Any]]) -> Resource:
    config = {"receivers": [{"name": "null"}, {"name": "platform"}, {"name": "critical", "pagerduty_configs": [{}]}],
              "route": {"receiver": "platform", "routes": routes}}
    return res(RELEASE, "kps", {"chart": "kube-prometheus-stack", "version": "88.5.3", "values": {"alertmanager": {"config": config}}})


CRITICAL_ROUTE = {"receiver": "critical", "matchers": ['severity="critical"'], "continue": True}
AIRFLOW_RELEASE = res(RELEASE, "airflow", {"chart": "airflow", "version": "1.19.0", "values": {}})
BUCKET_RES = res(BUCKET, "dags")

# policy -> (compliant resources, violating resources, the violating resources' messages)
CASES: dict[str, tuple[list[Resource], list[Resource], list[str]]] = {
    "s3-bucket-versioning-enabled": (
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketVersioning:BucketVersioning", "v", {"versioningConfiguration": {"status": "Enabled"}})],
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketVersioning:BucketVersioning", "v", {"versioningConfiguration": {"status": "Suspended"}})],
        ["bucket dags has no versioning enabled (status Suspended)"]),
    "s3-bucket-sse-kms": (
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "e",
                               {"rules": [kms_rule("aws:kms")]})],
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "e",
                               {"rules": [kms_rule("AES256", None), kms_rule("aws:kms", None)]})],
        ["bucket dags encrypts with AES256, not aws:kms", "bucket dags encrypts with the AWS-managed aws/s3 key: no kms_master_key_id"]),
    "s3-bucket-public-access-blocked": (
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {
            "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True})],
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {
            "blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True})],
        ["bucket dags's public access block leaves blockPublicPolicy, restrictPublicBuckets off"]),
    "s3-bucket-tls-only": (
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketPolicy:BucketPolicy", "tls", {"policy": doc(
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::dags-1a2b", "arn:aws:s3:::dags-1a2b/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}})})],
        [BUCKET_RES, on_bucket(BUCKET_RES, "aws:s3/bucketPolicy:BucketPolicy", "tls", {"policy": doc(
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::dags-1a2b/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}})})],
        ["bucket dags has no policy statement denying requests without TLS"]),
    "s3-no-public-acl-or-policy": (
        [res("aws:s3/bucketAclV2:BucketAclV2", "acl", {"acl": "private"}),
         res("aws:s3/bucketPolicy:BucketPolicy", "policy", {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::dags/*",
                                                                                 Principal={"AWS": "arn:aws:iam::123456789012:root"}))})],
        [res("aws:s3/bucketAclV2:BucketAclV2", "acl", {"acl": "public-read"}),
         res("aws:s3/bucketPolicy:BucketPolicy", "policy", {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::dags/*", Sid="Open", Principal="*"))})],
        ["acl sets the canned ACL public-read", "policy: statement 'Open' allows s3:GetObject to everyone"]),
    "iam-no-wildcard-action": (
        [res(ROLE_POLICY, "p", {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::dags/*"))})],
        [res(ROLE_POLICY, "p", {"policy": doc(allow(["s3:*", "kms:Decrypt"], "arn:aws:s3:::dags/*"))}),
         res(ROLE, "r", {"inlinePolicies": [{"name": "i", "policy": doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}]})],
        ["p: a statement allows s3:*", "r: a statement allows everything but iam:* (NotAction)"]),
    "iam-no-wildcard-resource-on-write": (
        [res(ROLE_POLICY, "p", {"policy": doc(allow(["ec2:Describe*", "eks:ListClusters"], "*"))})],
        [res(ROLE_POLICY, "p", {"policy": doc(allow(["ec2:DescribeInstances", "s3:PutObject", "kms:Decrypt"], "*", Sid="Broad"))})],
        ["p: statement 'Broad' allows s3:PutObject, kms:Decrypt on every resource"]),
    "iam-team-role-own-prefix": (
        [team_role(), team_policy(team_role(), LIST_OWN, allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "arn:aws:s3:::dags/teams/analytics/*"),
                                  allow(["kms:GenerateDataKey", "kms:Decrypt"], KEY_ARN))],
        [team_role(), team_policy(team_role(), allow("s3:ListBucket", "arn:aws:s3:::dags"),
                                  allow("s3:PutObject", ["arn:aws:s3:::dags/teams/analytics/*", "arn:aws:s3:::dags/teams/marketing/*"]),
                                  allow("iam:PassRole", "arn:aws:iam::123456789012:role/x")),
         res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "admin", {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
             {"role": [team_role()]})],
        ["team role ci-analytics has arn:aws:iam::aws:policy/AdministratorAccess attached",
         "team role ci-analytics may list beyond teams/analytics/ (s3:prefix unrestricted)",
         "team role ci-analytics may s3:PutObject on arn:aws:s3:::dags/teams/marketing/*, outside teams/analytics/",
         "team role ci-analytics may also iam:PassRole"]),
    "iam-github-oidc-trust-one-repository": (
        [github_role({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                       "token.actions.githubusercontent.com:sub": "repo:example-org/analytics-dags:ref:refs/heads/main"}})],
        [github_role({"StringEquals": {"token.actions.githubusercontent.com:sub": ["repo:example-org/analytics-dags:ref:refs/heads/main",
                                                                                   "repo:example-org/other:ref:refs/heads/main"]},
                      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:example-org/*"}})],
        ["role ci-analytics tests the GitHub subject with StringLike: any matching repository or branch may assume it",
         "role ci-analytics trusts 2 repositories: example-org/analytics-dags, example-org/other",
         "role ci-analytics trusts GitHub with audience unchecked, not exactly sts.amazonaws.com"]),
    "iam-irsa-trust-one-namespace": (
        [irsa_role(["system:serviceaccount:airflow:airflow-worker", "system:serviceaccount:airflow:airflow-scheduler"])],
        [irsa_role(["system:serviceaccount:airflow:airflow-worker", "system:serviceaccount:default:*", "system:serviceaccount:kube-system:x"])],
        ["role worker trusts subjects that are not one service account: system:serviceaccount:default:*",
         "role worker trusts service accounts of 2 namespaces: airflow, kube-system"]),
    "iam-role-no-policy-management-conflicts": (
        [res(ROLE, "r", {"inlinePolicies": [{"name": "i", "policy": doc(allow("s3:GetObject", "*"))}]})],
        [res(ROLE, "r", {"inlinePolicies": [{"name": "i", "policy": doc(allow("s3:GetObject", "*"))}]}),
         res(ROLE_POLICY, "p", {"policy": doc(allow("s3:GetObject", "*"))}, {"role": [res(ROLE, "r")]})],
        ["role r has inline_policies and separate RolePolicy resources"]),
    "kms-key-rotation-enabled": (
        [res("aws:kms/key:Key", "k", {"enableKeyRotation": True}), res("aws:kms/key:Key", "signing", {"customerMasterKeySpec": "RSA_2048"})],
        [res("aws:kms/key:Key", "k", {"enableKeyRotation": False})],
        ["key k does not rotate"]),
    "kms-key-no-lockout-bypass": (
        [res("aws:kms/key:Key", "k", {"bypassPolicyLockoutSafetyCheck": False})],
        [res("aws:kms/key:Key", "k", {"bypassPolicyLockoutSafetyCheck": True})],
        ["key k bypasses the policy lockout safety check"]),
    "security-group-no-public-ingress": (
        [res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "in", {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                                                                                 "referencedSecurityGroupId": "sg-1"}),
         res("aws:ec2/securityGroup:SecurityGroup", "sg", {"egress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]})],
        [res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "in", {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                                                                                 "cidrIpv4": "0.0.0.0/0"}),
         res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]}),
         res("aws:ec2/securityGroupRule:SecurityGroupRule", "ssh", {"type": "ingress", "protocol": "tcp", "fromPort": 22, "toPort": 22,
                                                                    "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]})],
        ["in admits tcp 443 from 0.0.0.0/0", "sg admits every port from ::/0", "ssh admits tcp 22 from 0.0.0.0/0"]),
    "security-group-no-rule-management-conflicts": (
        [res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-1"]}]})],
        [res("aws:ec2/securityGroup:SecurityGroup", "sg", {"ingress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-1"]}]}),
         res("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "in", {"ipProtocol": "tcp", "fromPort": 6379, "toPort": 6379},
             {"securityGroupId": [res("aws:ec2/securityGroup:SecurityGroup", "sg")]})],
        ["sg has inline rules and 1 separate rule resources"]),
    "rds-storage-encrypted": (
        [db(storageEncrypted=True, kmsKeyId=KEY_ARN)],
        [db(storageEncrypted=True), res(INSTANCE, "plain", {"storageEncrypted": False})],
        ["instance db is encrypted with the AWS-managed aws/rds key: no kms_key_id", "instance plain stores data unencrypted"]),
    "rds-not-publicly-accessible": ([db(publiclyAccessible=False)], [db(publiclyAccessible=True)], ["instance db is publicly accessible"]),
    "rds-backup-retention": ([db(backupRetentionPeriod=7)], [db(backupRetentionPeriod=3)], ["instance db keeps backups 3 days, fewer than 7"]),
    "rds-multi-az": ([db(multiAz=True)], [db()], ["instance db runs in one zone"]),
    "rds-deletion-protection": ([db(deletionProtection=True)], [db(deletionProtection=False)], ["instance db can be deleted"]),
    "rds-performance-insights": (
        [db(performanceInsightsEnabled=True, performanceInsightsKmsKeyId=KEY_ARN)],
        [db(performanceInsightsEnabled=True)],
        ["instance db encrypts Performance Insights with the AWS-managed key"]),
    "rds-tls-enforced": (
        [res("aws:rds/parameterGroup:ParameterGroup", "params", {"parameters": [{"name": "rds.force_ssl", "value": "1"}]}),
         res(INSTANCE, "db", {"parameterGroupName": "params-1"}, {"parameterGroupName": [res("aws:rds/parameterGroup:ParameterGroup", "params")]})],
        [res("aws:rds/parameterGroup:ParameterGroup", "params", {"parameters": [{"name": "rds.force_ssl", "value": "0"}]}),
         res(INSTANCE, "db", {"parameterGroupName": "params-1"}, {"parameterGroupName": [res("aws:rds/parameterGroup:ParameterGroup", "params")]}),
         res(INSTANCE, "other", {})],
        ["instance db's parameter group params does not set rds.force_ssl=1",
         "instance other uses the default parameter group, which does not force TLS"]),
    "rds-alarms-with-actions": (
        [db(identifier="db-1")] + [alarm(db(), m) for m in ("CPUUtilization", "FreeStorageSpace", "DatabaseConnections")],
        [db(identifier="db-1"), alarm(db(), "CPUUtilization", actionsEnabled=False), alarm(db(), "FreeStorageSpace", alarmActions=[])],
        ["instance db has no alarm on DatabaseConnections", "instance db's alarms cpuutilization, freestoragespace notify nobody"]),
    "eks-endpoint-not-public": (
        [cluster(), cluster(vpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})],
        [cluster(vpcConfig={"endpointPrivateAccess": True})],
        ["cluster eks's public endpoint is open to 0.0.0.0/0"]),
    "eks-secrets-encryption": ([cluster()], [cluster(encryptionConfig=None)], ["cluster eks does not encrypt Secrets with a KMS key"]),
    "eks-control-plane-logging": (
        [cluster()], [cluster(enabledClusterLogTypes=["api", "audit"])],
        ["cluster eks does not log authenticator, controllerManager, scheduler"]),
    "eks-node-groups-span-zones": (
        node_group("eu-west-1a", "eu-west-1b"), node_group("eu-west-1a", "eu-west-1a"),
        ["node group ng spans 1 zone (eu-west-1a), fewer than 2"]),
    "cloudwatch-log-group-retention-and-kms": (
        [res("aws:cloudwatch/logGroup:LogGroup", "logs", {"retentionInDays": 365, "kmsKeyId": KEY_ARN})],
        [res("aws:cloudwatch/logGroup:LogGroup", "logs", {})],
        ["log group logs keeps logs forever", "log group logs is not encrypted with a KMS key"]),
    "sns-topic-encrypted": (
        [res("aws:sns/topic:Topic", "alarms", {"kmsMasterKeyId": KEY_ARN})],
        [res("aws:sns/topic:Topic", "alarms", {"kmsMasterKeyId": "alias/aws/sns"})],
        ["topic alarms is not encrypted with a customer-managed key"]),
    "elasticache-encrypted": (
        [res("aws:elasticache/replicationGroup:ReplicationGroup", "broker", {"atRestEncryptionEnabled": True, "kmsKeyId": KEY_ARN,
                                                                             "transitEncryptionEnabled": True})],
        [res("aws:elasticache/replicationGroup:ReplicationGroup", "broker", {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": False})],
        ["replication group broker is not encrypted at rest with a customer-managed key", "replication group broker accepts plaintext connections"]),
    "secretsmanager-secret-cmk": (
        [res("aws:secretsmanager/secret:Secret", "slack", {"kmsKeyId": KEY_ARN})],
        [res("aws:secretsmanager/secret:Secret", "slack", {})],
        ["secret slack uses the AWS-managed aws/secretsmanager key"]),
    "launch-template-imdsv2-encrypted-volumes": (
        [res("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
                                                             "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "kmsKeyId": KEY_ARN}}]})],
        [res("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"metadataOptions": {"httpTokens": "optional"},
                                                             "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]})],
        ["launch template lt allows IMDSv1", "launch template lt lets pods reach the node's metadata (hop limit unset)",
         "launch template lt leaves /dev/xvda unencrypted or on the default key"]),
    "helm-chart-version-pinned": (
        airflow(airflow_values()),
        airflow(airflow_values(), version="^1.19") + [res(RELEASE, "keda", {"chart": "kedacore/keda"})],
        ["release airflow installs airflow ^1.19", "release keda installs keda at whatever version is latest"]),
    "helm-values-no-secret-literals": (
        # A connection that is only its type holds no secret (the remote-logging connection, boto3's own credentials).
        airflow(airflow_values(fernetKeySecretName="airflow-fernet", env=[{"name": "AWS_REGION", "value": "eu-west-1"},
                                                                          {"name": "AIRFLOW_CONN_AWS_DEFAULT", "value": "aws://"}])),
        airflow(airflow_values(webserverSecretKey="s3cr3t", env=[{"name": "AIRFLOW__CORE__FERNET_KEY", "value": "x" * 44},
                                                                 {"name": "AIRFLOW_CONN_WAREHOUSE", "value": "postgres://warehouse/db"}],
                               data={"metadataConnection": {"url": "postgresql://airflow:hunter2@db:5432/airflow"}}),
                module=CELERY_MODULE + 'WEBHOOK = "https://hooks.slack.com/services/T0/B0/abc"\n'),
        ["ConfigMap celery-config: data.airflow_platform_celery.py contains a Slack webhook",
         "release airflow: values.webserverSecretKey holds a literal webserverSecretKey",
         "release airflow: values.env[0] sets AIRFLOW__CORE__FERNET_KEY to a literal value",
         "release airflow: values.env[1] sets AIRFLOW_CONN_WAREHOUSE to a literal value",
         "release airflow: values.data.metadataConnection.url contains a URL with a password"]),
    "airflow-celery-executor": (
        airflow(airflow_values(executor="CeleryExecutor,KubernetesExecutor")), airflow(airflow_values(executor="KubernetesExecutor")),
        ["release airflow runs KubernetesExecutor"]),
    "airflow-keda-autoscaling": (
        airflow(airflow_values()), airflow(airflow_values(workers=workers(keda={"enabled": True, "minReplicaCount": 2}))),
        ["release airflow leaves workers.keda.maxReplicaCount to the chart's default"]),
    "airflow-keda-not-through-pgbouncer": (
        airflow(airflow_values()), airflow(airflow_values(workers=workers(keda={"enabled": True, "maxReplicaCount": 10}))),
        ["release airflow sends KEDA's query through PgBouncer"]),
    "airflow-celery-worker-recycling": (
        airflow(airflow_values()), airflow(airflow_values(), module='CELERY_CONFIG = {**DEFAULTS, "worker_max_tasks_per_child": 200}\n'),
        ["airflow_platform_celery.CELERY_CONFIG does not set worker_max_memory_per_child"]),
    "airflow-worker-grace-period": (
        airflow(airflow_values()), airflow(airflow_values(workers=workers(terminationGracePeriodSeconds=600))),
        ["release airflow gives workers 600 s to stop, less than 1.5 × the 60-minute longest task (5400 s)"]),
    "airflow-dag-sync": (
        airflow(airflow_values()),
        airflow(airflow_values(dagProcessor={}, workers=workers(
            extraInitContainers=[{**OBJINSYNC, "args": ["pull", "--once", "s3://dags/teams", "/opt/airflow/dags"]}],
            extraContainers=[{**OBJINSYNC, "args": ["pull", "s3://dags/shared", "/opt/airflow/plugins"]}]))),
        ["dagProcessor pods have no objinsync init container: a new pod would start without DAGs",
         "dagProcessor pods have no objinsync sidecar: their DAGs would never change after start",
         "workers pods sync nothing into /opt/airflow/dags"]),
    "airflow-db-cleanup": (
        airflow(airflow_values()), airflow(airflow_values(databaseCleanup={"enabled": False})),
        ["release airflow never cleans the metadata DB"]),
    "airflow-workers-not-disrupted": (
        airflow(airflow_values()), airflow(airflow_values(workers=workers(podAnnotations={}, safeToEvict=True))),
        ["release airflow's workers lack the karpenter.sh/do-not-disrupt annotation",
         "release airflow lets cluster-autoscaler evict workers (workers.safeToEvict)"]),
    "airflow-statsd-off-with-otel": (
        airflow(airflow_values()), airflow(airflow_values(statsd={})),
        ["release airflow deploys the StatsD exporter next to OpenTelemetry"]),
    "observability-required-alerts": (
        [AIRFLOW_RELEASE, prometheus_rule(ALERTS)], [AIRFLOW_RELEASE, prometheus_rule(ALERTS[1:-1])],
        ["release airflow has no alert AirflowSchedulerDown, AirflowTeamTaskFailures"]),
    "alertmanager-critical-route": (
        [AIRFLOW_RELEASE, kube_prometheus_stack([CRITICAL_ROUTE])],
        [AIRFLOW_RELEASE, kube_prometheus_stack([{"receiver": "platform"}, {**CRITICAL_ROUTE, "receiver": "null"}])],
        ["Alertmanager routes critical alerts to 'null', which is not a receiver that notifies",
         "Alertmanager route 1 catches every alert before the critical route"]),
    "aws-required-tags": (
        [res(BUCKET, "dags", {}, provider=TAGGED), res(BUCKET, "logs", {"tags": {"environment": "dev", "owner": "me"}}),
         res(ROLE_POLICY, "untaggable", {})],
        [res(BUCKET, "dags", {"tags": {"owner": ""}}, provider={"defaultTags": json.dumps({"tags": {"environment": "prod"}})})],
        ["dags has no owner tag"]),
}


def messages(policy: str, resources: list[Resource]) -> list[str]:
    return [v.message for v in evaluate(resources, {}, policies=[BY_NAME[policy]])]


@pytest.mark.parametrize("daemon_in, restart, expected", [
    ("extraContainers", None, []),
    ("extraInitContainers", "Always", []),
    ("extraInitContainers", None, [f"{component} pods have no objinsync sidecar: their DAGs would never change after start"
                                   for component in ("dagProcessor", "workers")]),
], ids=["ordinary-sidecar", "native-sidecar", "daemon-as-a-plain-init-container"])
def test_dag_sync_daemon_runs_beside_airflow(daemon_in, restart, expected):
    """The sync daemon counts as a sidecar as an ordinary container or a native sidecar, never as a plain init container
    (which would hold the pod before Airflow for ever)."""
    once = {**OBJINSYNC, "args": ["pull", "--once", "s3://dags/teams", "/opt/airflow/dags"]}
    daemon = {**OBJINSYNC, "args": ["pull", "--interval", "30s", "s3://dags/teams", "/opt/airflow/dags"],
              **({"restartPolicy": restart} if restart else {})}
    sync = {"extraInitContainers": [once, daemon]} if daemon_in == "extraInitContainers" else {"extraInitContainers": [once], "extraContainers": [daemon]}
    values = airflow_values(dagProcessor=sync, workers=workers(**sync))
    assert messages("airflow-dag-sync", airflow(values)) == expected


class TestUnknownValues:
    """Tests that a value unknown during preview skips the check instead of passing or failing it."""

    def test_unknown_value_skips_only_that_resource(self):
        """An instance whose multiAz is unknown is not judged; its neighbour still is."""
        assert messages("rds-multi-az", [db(multiAz=UNKNOWN), res(INSTANCE, "other", {"multiAz": False})]) == ["instance other runs in one zone"]

    def test_unknown_policy_document_is_undecided(self):
        """A RolePolicy whose document names a resource yet to be created is not judged in preview."""
        assert messages("iam-no-wildcard-action", [res(ROLE_POLICY, "p", {"policy": UNKNOWN})]) == []


class TestTaggableTypes:
    """Tests the list of taggable types the tags policy uses against pulumi-aws itself."""

    def test_list_is_generated_from_the_pinned_pulumi_aws(self):
        """policies/airflow_guard/taggable_types.txt is what tools.taggable_types reads from pulumi-aws now."""
        assert TAGGABLE_FILE.read_text() == taggable_render()

    def test_every_tagged_resource_of_prod_is_taggable_and_setting_resources_are_not(self, prod_plan):
        """A resource of prod that sets tags is on the list; a bucket's versioning or a role's inline policy is not."""
        assert {r.type for r in prod_plan.resources if "tags" in r.inputs} <= taggable_types()
        assert {"aws:s3/bucketVersioning:BucketVersioning", "aws:iam/rolePolicy:RolePolicy", "aws:kms/alias:Alias"}.isdisjoint(taggable_types())
