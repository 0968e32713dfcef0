"""Tests the FlowLogs component: every flow of the platform's VPC (or of an existing VPC's given subnets) into a log group of
its own, encrypted with its own key and expiring, delivered by a role only this account's flow logs may assume."""

from __future__ import annotations

import json

import pytest

from components.flow_logs import FlowLogs, FlowLogsArgs
from tests.conftest import variant_config
from tools.offline import Plan, run, run_stack_config

FLOW_LOG = "aws:ec2/flowLog:FlowLog"
ACCOUNT = "123456789012"


def statements(document: str) -> list[dict]:
    return json.loads(document)["Statement"]


@pytest.fixture(scope="module")
def existing_vpc_plan() -> Plan:
    stack, config = variant_config("prod-existing-vpc")
    return run_stack_config(config, stack)


class TestPlatformVpc:
    """Tests the flow log of the VPC the platform creates."""

    @pytest.mark.parametrize("stack_fixture, environment, retention", [("dev_plan", "dev", 14), ("prod_plan", "prod", 90)], ids=["dev", "prod"])
    def test_one_flow_log_of_all_traffic_into_the_group(self, request, stack_fixture, environment, retention):
        """One flow log, on the VPC, of ALL traffic in one-minute records, into the flow log group (14 days in dev, 90 in prod)."""
        plan = request.getfixturevalue(stack_fixture)
        name = f"airflow-{environment}-flow-logs"
        [vpc] = plan.of_type("aws:ec2/vpc:Vpc")
        [flow_log] = plan.of_type(FLOW_LOG)
        group, role = plan.named(f"{name}-group"), plan.named(f"{name}-role")
        assert flow_log.name == f"{name}-vpc"
        assert {k: v for k, v in flow_log.inputs.items() if k != "tags"} == {
            "vpcId": vpc.id, "trafficType": "ALL", "logDestinationType": "cloud-watch-logs", "logDestination": group.outputs["arn"],
            "iamRoleArn": role.outputs["arn"], "maxAggregationInterval": 60}
        assert group.inputs == {"name": f"/aws/vpc-flow-logs/airflow-{environment}", "retentionInDays": retention,
                                "kmsKeyId": plan.named(f"{name}-key").outputs["arn"]}
        # Created once the role may deliver.
        assert plan.named(f"{name}-role-policy").urn in flow_log.dependencies

    def test_key_lets_cloudwatch_logs_use_it_for_the_flow_log_group_only(self, prod_plan):
        """Beside the account's administration, the key's one use: CloudWatch Logs of the region, for that group's ARN."""
        key = prod_plan.named("airflow-prod-flow-logs-key")
        [administers, logs] = statements(key.inputs["policy"])
        assert (administers["Sid"], administers["Principal"]) == ("AccountAdministers", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
        assert logs == {
            "Sid": "LogsEncryptTheseLogGroups", "Effect": "Allow",
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], "Resource": "*",
            "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
            "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn":
                                        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/vpc-flow-logs/airflow-prod"}}}
        assert (key.inputs["enableKeyRotation"], key.protect) == (True, True)

    def test_role_is_for_this_accounts_flow_logs_and_writes_the_group_only(self, prod_plan):
        """The flow-log service may assume the role for flow logs of this account and region only; the role may write to
        the flow log group's streams and nothing else."""
        role = prod_plan.named("airflow-prod-flow-logs-role")
        assert statements(role.inputs["assumeRolePolicy"]) == [{
            "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                          "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:eu-west-1:{ACCOUNT}:vpc-flow-log/*"}}}]
        group = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/vpc-flow-logs/airflow-prod"
        assert statements(prod_plan.named("airflow-prod-flow-logs-role-policy").inputs["policy"]) == [{
            "Sid": "DeliverToTheFlowLogGroup", "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
            "Resource": [group, f"{group}:*"]}]

    def test_retention_from_config(self, plan_with):
        """network.flowLogRetentionDays sets the group's retention."""
        plan = plan_with("dev", {"airflow-platform:network": {"vpcCidr": "10.40.0.0/16", "flowLogRetentionDays": 365}})
        assert plan.named("airflow-dev-flow-logs-group").inputs["retentionInDays"] == 365


class TestExistingVpc:
    """Tests what is recorded in a VPC the platform did not create."""

    def test_each_given_subnet_is_logged_and_the_vpc_is_not(self, existing_vpc_plan):
        """A flow log per private subnet the stack was given, none on the VPC (its other tenants' flows are not the platform's)."""
        flow_logs = existing_vpc_plan.of_type(FLOW_LOG)
        assert [(f.name, f.inputs.get("subnetId"), f.inputs.get("vpcId"), f.inputs["trafficType"]) for f in flow_logs] == [
            ("airflow-prod-flow-logs-subnet-a", "subnet-0123456789abcdef0", None, "ALL"),
            ("airflow-prod-flow-logs-subnet-b", "subnet-0123456789abcdef1", None, "ALL"),
            ("airflow-prod-flow-logs-subnet-c", "subnet-0123456789abcdef2", None, "ALL")]
        group = existing_vpc_plan.named("airflow-prod-flow-logs-group")
        assert {f.inputs["logDestination"] for f in flow_logs} == {group.outputs["arn"]}


@pytest.mark.parametrize("targets", [{}, {"vpc_id": "vpc-1", "subnets": {"subnet-a": "subnet-1"}}], ids=["neither", "both"])
def test_records_the_vpc_or_the_subnets(targets):
    """The component records one or the other, never both or nothing."""
    args = FlowLogsArgs(environment_name="airflow-test", partition="aws", region="eu-west-1", account_id=ACCOUNT, retention_days=14,
                        protect=False, **targets)
    with pytest.raises(ValueError) as caught:
        run(lambda: FlowLogs("flows", args), {"aws:region": "eu-west-1"})
    assert str(caught.value) == "FlowLogs records either the platform's VPC or an existing VPC's subnets"
