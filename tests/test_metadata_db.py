"""Tests the MetadataDatabase component: RDS PostgreSQL across zones, closed to all but the cluster, encrypted, TLS-only."""

from __future__ import annotations

import json

import pytest

from components import instance_classes
from tools.offline import Plan

INSTANCE = "aws:rds/instance:Instance"


def instance(plan: Plan):
    [db] = plan.of_type(INSTANCE)
    return db


class TestInstance:
    """Tests the DB instance's settings per environment."""

    @pytest.mark.parametrize("stack_fixture, expected", [
        ("dev_plan", {"multiAz": False, "deletionProtection": False, "skipFinalSnapshot": True, "backupRetentionPeriod": 7,
                      "instanceClass": "db.t4g.medium", "allocatedStorage": 20, "maxAllocatedStorage": 50}),
        ("prod_plan", {"multiAz": True, "deletionProtection": True, "skipFinalSnapshot": False, "backupRetentionPeriod": 14,
                       "instanceClass": "db.r7g.large", "allocatedStorage": 100, "maxAllocatedStorage": 1000}),
    ], ids=["dev", "prod"])
    def test_environment_settings(self, request, stack_fixture, expected):
        """Dev is cheap and disposable; prod is Multi-AZ, protected, kept 14 days, snapshotted on delete."""
        db = instance(request.getfixturevalue(stack_fixture))
        assert {k: db.inputs.get(k) for k in expected} == expected

    def test_prod_is_protected_dev_is_not(self, dev_plan, prod_plan):
        """protect=True on the prod instance only; prod keeps a named final snapshot."""
        assert (instance(prod_plan).protect, instance(dev_plan).protect) == (True, False)
        assert instance(prod_plan).inputs["finalSnapshotIdentifier"] == "airflow-prod-db-final"

    def test_encrypted_gp3_private_postgres(self, prod_plan):
        """PostgreSQL on pinned major 16, gp3, encrypted with the component's key, never public."""
        db = instance(prod_plan)
        key = prod_plan.named("airflow-prod-db-key")
        assert {k: db.inputs[k] for k in ("engine", "engineVersion", "storageType", "storageEncrypted", "kmsKeyId", "publiclyAccessible")} == {
            "engine": "postgres", "engineVersion": "16", "storageType": "gp3", "storageEncrypted": True,
            "kmsKeyId": key.outputs["arn"], "publiclyAccessible": False}

    def test_insights_and_enhanced_monitoring(self, prod_plan):
        """Performance Insights (encrypted, 31 days in prod) and enhanced monitoring through its own role."""
        db = instance(prod_plan)
        role = prod_plan.named("airflow-prod-db-monitoring")
        assert (db.inputs["performanceInsightsEnabled"], db.inputs["performanceInsightsRetentionPeriod"]) == (True, 31)
        assert db.inputs["performanceInsightsKmsKeyId"] == prod_plan.named("airflow-prod-db-key").outputs["arn"]
        assert (db.inputs["monitoringInterval"], db.inputs["monitoringRoleArn"]) == (60, role.outputs["arn"])
        assert '"monitoring.rds.amazonaws.com"' in role.inputs["assumeRolePolicy"]

    def test_password_is_generated_and_secret(self, prod_plan):
        """The master password comes from pulumi_random and reaches RDS only as a secret."""
        db = instance(prod_plan)
        password = prod_plan.named("airflow-prod-db-password")
        assert "password" in db.secret_inputs
        assert (password.inputs["length"], password.inputs["special"]) == (40, False)
        assert "result" in password.secret_outputs


class TestNetworkAndTls:
    """Tests where the DB lives and who may connect."""

    def test_subnets_of_every_zone(self, prod_plan):
        """The subnet group holds the private subnet of every zone."""
        group = prod_plan.named("airflow-prod-db-subnets")
        assert group.inputs["subnetIds"] == prod_plan.outputs["privateSubnetIds"]
        assert instance(prod_plan).inputs["dbSubnetGroupName"] == group.outputs["name"]

    def test_only_the_cluster_may_connect(self, prod_plan):
        """One ingress rule: PostgreSQL's port from the cluster's security group; no CIDR, no egress."""
        [cluster] = prod_plan.of_type("aws:eks/cluster:Cluster")
        group = prod_plan.named("airflow-prod-db-sg")
        rules = [r for r in prod_plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if r.inputs["securityGroupId"] == group.id]
        assert [(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"], r.inputs["referencedSecurityGroupId"]) for r in rules] == [
            (5432, 5432, "tcp", cluster.outputs["vpcConfig"]["clusterSecurityGroupId"])]
        assert not any("cidrIpv4" in r.inputs or "cidrIpv6" in r.inputs for r in rules)
        assert "ingress" not in group.inputs and "egress" not in group.inputs
        assert instance(prod_plan).inputs["vpcSecurityGroupIds"] == [group.id]

    def test_parameter_group_forces_tls(self, prod_plan):
        """The parameter group of the engine's family sets rds.force_ssl=1 (and logs slow statements, TestSlowStatements)."""
        params = prod_plan.named("airflow-prod-db-params")
        assert params.inputs["family"] == "postgres16"
        assert params.inputs["parameters"][0] == {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"}
        assert instance(prod_plan).inputs["parameterGroupName"] == params.outputs["name"]


class TestInstanceClasses:
    """Tests the max_connections figures the alarms build on."""

    @pytest.mark.parametrize("instance_class, memory, connections", [
        ("db.t4g.micro", 1, 112), ("db.t4g.medium", 4, 450), ("db.m7g.large", 8, 901), ("db.r7g.large", 16, 1802),
        ("db.r6i.2xlarge", 64, 5000), ("db.m5.16xlarge", 256, 5000),
    ], ids=["t4g.micro", "t4g.medium", "m7g.large", "r7g.large", "capped-r6i.2xlarge", "capped-m5.16xlarge"])
    def test_max_connections(self, instance_class, memory, connections):
        """LEAST(memory/9531392, 5000), from the class's memory."""
        assert (instance_classes.memory_gib(instance_class), instance_classes.max_connections(instance_class)) == (memory, connections)

    def test_unknown_classes_are_not_guessed(self):
        """Only listed classes are known; the config refuses the others."""
        assert not instance_classes.is_known("db.x2g.large")

    @pytest.mark.parametrize("instance_class, supported", [
        ("db.t4g.micro", False), ("db.t3.small", False), ("db.t4g.medium", True), ("db.m7g.large", True)],
        ids=["t4g.micro", "t3.small", "t4g.medium", "m7g.large"])
    def test_performance_insights_availability(self, instance_class, supported):
        """The smallest burstable classes lack Performance Insights, which the platform always turns on."""
        assert instance_classes.supports_performance_insights(instance_class) is supported


class TestSlowStatements:
    """Tests the slow-statement log and the log groups RDS exports to."""

    def test_statements_slower_than_a_second_are_logged(self, prod_plan):
        """log_min_duration_statement is database.slowStatementMs (1000 by default), applied without a reboot."""
        assert prod_plan.named("airflow-prod-db-params").inputs["parameters"][1:] == [
            {"name": "log_min_duration_statement", "value": "1000", "applyMethod": "immediate"}]

    def test_threshold_from_config(self, plan_with):
        """database.slowStatementMs sets the threshold."""
        plan = plan_with("dev", {"airflow-platform:database": {"instanceClass": "db.t4g.medium", "allocatedStorageGiB": 20,
                                                               "maxAllocatedStorageGiB": 50, "slowStatementMs": 250, "logRetentionDays": 7}})
        assert plan.named("airflow-dev-db-params").inputs["parameters"][1]["value"] == "250"
        assert {g.inputs["retentionInDays"] for g in (plan.named("airflow-dev-db-logs-postgresql"), plan.named("airflow-dev-db-logs-upgrade"))} == {7}

    @pytest.mark.parametrize("stack_fixture, environment", [("dev_plan", "dev"), ("prod_plan", "prod")], ids=["dev", "prod"])
    def test_exported_log_groups_are_declared_first(self, request, stack_fixture, environment):
        """The identifier is fixed, so the postgresql and upgrade log groups RDS exports to are ours, declared before the instance
        (which depends on them): 30 days, encrypted with a key of their own."""
        plan = request.getfixturevalue(stack_fixture)
        db = instance(plan)
        identifier = f"airflow-{environment}-db-postgres"
        key = plan.named(f"airflow-{environment}-db-logs-key")
        groups = [plan.named(f"airflow-{environment}-db-logs-{log}") for log in ("postgresql", "upgrade")]
        assert (db.inputs["identifier"], db.outputs["address"].split(".")[0]) == (identifier, identifier)
        assert db.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
        assert [g.inputs for g in groups] == [{"name": f"/aws/rds/instance/{identifier}/{log}", "retentionInDays": 30, "kmsKeyId": key.outputs["arn"]}
                                              for log in ("postgresql", "upgrade")]
        assert {g.urn for g in groups} <= set(db.dependencies)

    def test_log_key_is_for_cloudwatch_logs_of_these_groups(self, prod_plan):
        """The key's one use: CloudWatch Logs of the region, for the two exported groups' ARNs."""
        [administers, logs] = json.loads(prod_plan.named("airflow-prod-db-logs-key").inputs["policy"])["Statement"]
        prefix = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/rds/instance/airflow-prod-db-postgres"
        assert administers["Sid"] == "AccountAdministers"
        assert (logs["Sid"], logs["Principal"], logs["Condition"]) == (
            "LogsEncryptTheseLogGroups", {"Service": "logs.eu-west-1.amazonaws.com"},
            {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [f"{prefix}/postgresql", f"{prefix}/upgrade"]}})
