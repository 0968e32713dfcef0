"""Security groups: nothing from the whole internet, and rules managed one way.

The load balancers' security groups are security groups like any other: whatever lb-internal (entry.py) allows, a
group in front of a load balancer admits no 0.0.0.0/0 or ::/0 either, and a finding on one names the load balancer.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Optional

from .documents import as_list
from .model import Resource, Stack, known, policy

GROUPS = ("aws:ec2/securityGroup:SecurityGroup", "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
PREFIX_LIST_ENTRY = "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer", "aws:elb/loadBalancer:LoadBalancer")


def is_world(cidr: Any) -> bool:
    """A CIDR of the whole address space, however written (0.0.0.0/0, ::/0, 0::/0, 0:0:0:0:0:0:0:0/0)."""
    try:
        return ipaddress.ip_network(str(cidr).strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def _ports(rule: Any) -> str:
    low, high = known(rule.get("fromPort")), known(rule.get("toPort"))
    protocol = str(known(rule.get("protocol", rule.get("ipProtocol"))))
    if protocol in ("-1", "all"):
        return "every port"
    return f"{protocol} {int(low)}" + (f"-{int(high)}" if high is not None and high != low else "") if low is not None else protocol


def _prefix_list_world(lists: Iterable[Resource], stack: Stack) -> list[str]:
    """The whole-internet entries of prefix lists of the stack (inline entries, and ManagedPrefixListEntry resources)."""
    found = []
    for prefix_list in lists:
        cidrs = [known(e.get("cidr")) for e in as_list(prefix_list.props.get("entries"))]
        cidrs += [known(e.props.get("cidr")) for e in stack.pointing_at(prefix_list, (PREFIX_LIST_ENTRY,), "prefixListId")]
        found += [f"{c} (prefix list {prefix_list.name})" for c in cidrs if is_world(c)]
    return found


def _in_front_of(groups: Iterable[Resource], stack: Stack) -> str:
    """' (the security group of load balancer X)' when a load balancer of the stack uses one of the groups."""
    urns = {g.urn for g in groups}
    names = [lb.name for lb in stack.of_type(*LOAD_BALANCERS) if urns & set(lb.property_dependencies.get("securityGroups", ()))]
    return f" (the security group of load balancer {', '.join(names)})" if names else ""


@policy("security-group-no-public-ingress", types=GROUPS + (LEGACY_RULE, INGRESS_RULE), needs_stack=True, severity="critical",
        checkov=("CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277"),
        description="No security group admits traffic from 0.0.0.0/0 or ::/0, by CIDR or through a prefix list of the stack; "
                    "a load balancer's group included, even where lb-internal allows an internet-facing one.",
        remediation="Admit the callers by security group (referenced_security_group_id), by the VPC's own CIDR, or at the "
                    "entry's load balancer by the client ranges of entry.clientCidrs (the VPN, offices, peered networks): "
                    "even an internet-facing entry admits only those, and a prefix list a rule names holds no 0.0.0.0/0 "
                    "or ::/0 either.")
def no_public_ingress(resource: Resource, stack: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    if resource.type in GROUPS:
        rules, groups = as_list(resource.props.get("ingress")), [resource]
        lists = [r for r in stack.sources(resource, "ingress") if r.type == PREFIX_LIST]
    elif resource.type == LEGACY_RULE:
        rules = [resource.props] if known(resource.props.get("type")) == "ingress" else []
        groups, lists = stack.sources(resource, "securityGroupId"), [r for r in stack.sources(resource, "prefixListIds") if r.type == PREFIX_LIST]
    else:
        rules = [{**resource.props, "cidrBlocks": [known(resource.props.get("cidrIpv4"))], "ipv6CidrBlocks": [known(resource.props.get("cidrIpv6"))],
                  "prefixListIds": [known(resource.props.get("prefixListId"))]}]
        groups, lists = stack.sources(resource, "securityGroupId"), [r for r in stack.sources(resource, "prefixListId") if r.type == PREFIX_LIST]
    for rule in rules:
        open_to = [c for c in as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")) if is_world(c)]
        if [p for p in as_list(rule.get("prefixListIds")) if p]:
            open_to += _prefix_list_world(lists, stack)  # an inline group's rules share one dependency list: all its lists
        if open_to:
            yield f"{resource.name} admits {_ports(rule)} from {', '.join(open_to)}{_in_front_of(groups, stack)}"


@policy("security-group-no-rule-management-conflicts", types=("aws:ec2/securityGroup:SecurityGroup",), needs_stack=True, severity="low",
        description="A security group's rules are managed one way: inline, or as separate rule resources.",
        remediation="Move the inline ingress/egress blocks into aws.vpc.SecurityGroupIngressRule/EgressRule resources; with "
                    "both, each update removes the other's rules.")
def no_rule_conflicts(group: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    inline = as_list(group.props.get("ingress")) or as_list(group.props.get("egress"))
    separate = stack.pointing_at(group, (LEGACY_RULE, INGRESS_RULE, EGRESS_RULE), "securityGroupId")
    if inline and separate:
        yield f"{group.name} has inline rules and {len(separate)} separate rule resources"
