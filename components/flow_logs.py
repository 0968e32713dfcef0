"""Flow logs: every accepted and rejected flow of the platform's network, into a log group of its own, encrypted with its
own key and expiring after `network.flowLogRetentionDays`, delivered by a role only the flow-log service of this account
may assume and that may write to that group only.

The VPC the platform creates gets one flow log for the whole VPC. An existing VPC (`network.existingVpcId`) is not the
platform's: each subnet the stack was given (private, and those for the control plane and the load balancer) gets a
flow log instead, and the VPC none. Every network interface the platform creates lives in those subnets (nodes, pods
through the VPC CNI, the DB, the broker, EFS, the entry's load balancer, the control plane's), so its traffic is recorded all the same, while the flows of the VPC's other tenants stay their owner's
to record (and to pay for): the platform neither reads nor duplicates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_aws as aws

from components import iam
from components.log_groups import encrypted_log_groups, log_group_arn

SERVICE = "vpc-flow-logs.amazonaws.com"
# A record per flow and minute rather than per ten minutes: what an investigation lines up with other logs.
AGGREGATION_SECONDS = 60


def flow_log_group_name(environment_name: str) -> str:
    return f"/aws/vpc-flow-logs/{environment_name}"


@dataclass
class FlowLogsArgs:
    environment_name: str
    partition: str
    region: str
    account_id: str
    retention_days: int
    protect: bool
    # What to record: the VPC the platform created, or else the existing VPC's subnets it uses (flow log name -> subnet id).
    vpc_id: Optional[pulumi.Input[str]] = None
    subnets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class FlowLogs(pulumi.ComponentResource):
    log_group_name: str
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: FlowLogsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:FlowLogs", name, None, opts)
        if (args.vpc_id is None) == (not args.subnets):
            raise ValueError("FlowLogs records either the platform's VPC or an existing VPC's subnets")
        child = pulumi.ResourceOptions(parent=self)
        self.log_group_name = flow_log_group_name(args.environment_name)
        group_arn = log_group_arn(args.partition, args.region, args.account_id, self.log_group_name)
        _, groups = encrypted_log_groups(name, "VPC flow logs", {"group": self.log_group_name}, args.retention_days,
                                         args.partition, args.region, args.account_id, self, args.protect)

        role = aws.iam.Role(f"{name}-role", assume_role_policy=self._trust(args), description="VPC flow logs: deliver to the flow log group",
                            opts=child)
        delivery = aws.iam.RolePolicy(f"{name}-role-policy", role=role.id, policy=iam.document([
            {"sid": "DeliverToTheFlowLogGroup", "resources": [group_arn, f"{group_arn}:*"],
             "actions": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"]},
        ], self), opts=child)
        self.role_arn = role.arn

        targets = {"vpc": {"vpc_id": args.vpc_id}} if args.vpc_id is not None else {
            suffix: {"subnet_id": subnet_id} for suffix, subnet_id in args.subnets.items()}
        for suffix, target in targets.items():
            aws.ec2.FlowLog(f"{name}-{suffix}", traffic_type="ALL", log_destination_type="cloud-watch-logs",
                            log_destination=groups["group"].arn, iam_role_arn=role.arn, max_aggregation_interval=AGGREGATION_SECONDS,
                            tags={"Name": f"{name}-{suffix}"}, opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]), **target)
        self.register_outputs({"logGroupName": self.log_group_name, "roleArn": self.role_arn})

    def _trust(self, args: FlowLogsArgs) -> pulumi.Output[str]:
        # Only flow logs of this account and region may have the service assume the role (no confused deputy).
        return iam.document([{
            "actions": ["sts:AssumeRole"],
            "principals": [{"type": "Service", "identifiers": [SERVICE]}],
            "conditions": [
                {"test": "StringEquals", "variable": "aws:SourceAccount", "values": [args.account_id]},
                {"test": "ArnLike", "variable": "aws:SourceArn",
                 "values": [f"arn:{args.partition}:ec2:{args.region}:{args.account_id}:vpc-flow-log/*"]},
            ],
        }], self)
