"""Security groups: nothing from the whole internet, and rules managed one way."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .model import Resource, Stack, known, policy

GROUPS = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
WORLD = ("0.0.0.0/0", "::/0")


def _ports(rule: Any) -> str:
    low, high = known(rule.get("fromPort")), known(rule.get("toPort"))
    protocol = str(known(rule.get("protocol", rule.get("ipProtocol"))))
    if protocol in ("-1", "all"):
        return "every port"
    return f"{protocol} {int(low)}" + (f"-{int(high)}" if high is not None and high != low else "") if low is not None else protocol


@policy("security-group-no-public-ingress", types=GROUPS + (LEGACY_RULE, INGRESS_RULE), severity="critical",
        checkov=("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277"),
        description="No security group admits traffic from 0.0.0.0/0 or ::/0.",
        remediation="Admit the callers by security group (referenced_security_group_id) or by the VPC's own CIDR; the platform "
                    "has no public entry point, and reaches its UI through the cluster.")
def no_public_ingress(resource: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if resource.type in GROUPS:
        rules = as_list(resource.props.get("ingress"))
    elif resource.type == LEGACY_RULE:
        rules = [resource.props] if known(resource.props.get("type")) == "ingress" else []
    else:
        rules = [{**resource.props, "cidrBlocks": [known(resource.props.get("cidrIpv4"))], "ipv6CidrBlocks": [known(resource.props.get("cidrIpv6"))]}]
    for rule in rules:
        open_to = [c for c in as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")) if c in WORLD]
        if open_to:
            yield f"{resource.name} admits {_ports(rule)} from {', '.join(open_to)}"


@policy("security-group-no-rule-management-conflicts", types=("aws:ec2/securityGroup:SecurityGroup",), needs_stack=True, severity="low",
        description="A security group's rules are managed one way: inline, or as separate rule resources.",
        remediation="Move the inline ingress/egress blocks into aws.vpc.SecurityGroupIngressRule/EgressRule resources; with "
                    "both, each update removes the other's rules.")
def no_rule_conflicts(group: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    inline = as_list(group.props.get("ingress")) or as_list(group.props.get("egress"))
    separate = stack.pointing_at(group, (LEGACY_RULE, INGRESS_RULE, EGRESS_RULE), "securityGroupId")
    if inline and separate:
        yield f"{group.name} has inline rules and {len(separate)} separate rule resources"
