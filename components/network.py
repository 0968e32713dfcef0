"""Network: a VPC with, in every zone, a private subnet for the nodes and pods, a public one for NAT, and two small
ones of their own for the EKS control plane's interfaces and the entry's internal load balancer; NAT, and an S3
gateway endpoint.

The control plane and the load balancer get subnets apart from the pods' because the network policies admit them by
address range (an ipBlock: neither is a pod), and the VPC CNI gives pods the addresses of their nodes' subnets: in a
shared subnet, any pod would pass for the load balancer or the API server.

Or, with `existingVpcId`, the given subnets, after checking they really lie in distinct zones.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.config import ConfigError

# Subnet layout of a new VPC: the CIDR is cut into 8 blocks; blocks 0-5 are the private subnets (pods take
# their IPs from these with the VPC CNI, so they get the room), block 6 is cut into 8 small public subnets
# (NAT gateways and an internet-facing load balancer only), block 7 into 16 edge subnets: 0-5 for the control plane's
# interfaces, 8-13 for the internal load balancer. A /20 VPC still gives each a /27, as an ALB needs (EKS asks /28).
_PRIVATE_SPLIT_BITS = 3
_PUBLIC_BLOCK = 6
_PUBLIC_SPLIT_BITS = 3
_EDGE_BLOCK = 7
_EDGE_SPLIT_BITS = 4
_ENTRY_OFFSET = 8


@dataclass(frozen=True)
class ZoneLayout:
    """The CIDRs of one zone's subnets in a new VPC."""
    private: str
    public: str
    control_plane: str
    entry: str


def subnet_layout(vpc_cidr: str, zone_count: int) -> list[ZoneLayout]:
    """The subnets of each zone of a new VPC."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(vpc.subnets(prefixlen_diff=_PRIVATE_SPLIT_BITS))
    public = list(blocks[_PUBLIC_BLOCK].subnets(prefixlen_diff=_PUBLIC_SPLIT_BITS))
    edge = list(blocks[_EDGE_BLOCK].subnets(prefixlen_diff=_EDGE_SPLIT_BITS))
    return [ZoneLayout(str(blocks[i]), str(public[i]), str(edge[i]), str(edge[_ENTRY_OFFSET + i])) for i in range(zone_count)]


@dataclass
class NetworkArgs:
    region: str
    zone_count: int
    nat_gateways: str = "single"  # "single" or "per-zone"
    vpc_cidr: Optional[str] = None
    existing_vpc_id: Optional[str] = None
    existing_private_subnet_ids: list[str] = field(default_factory=list)
    # An existing VPC's subnets for the control plane and the internal load balancer; empty: the private subnets.
    existing_control_plane_subnet_ids: list[str] = field(default_factory=list)
    existing_entry_subnet_ids: list[str] = field(default_factory=list)


class Network(pulumi.ComponentResource):
    """The VPC side of the platform; `zones` and every list of subnets are in the same order."""

    vpc_id: pulumi.Output[str]
    zones: list[str]
    private_subnet_ids: list[pulumi.Output[str]]
    # A new VPC's public subnets (NAT gateways, an internet-facing entry); none for an existing VPC, whose are not known.
    public_subnet_ids: list[pulumi.Output[str]]
    # Where the EKS control plane's interfaces and the internal load balancer live (an existing VPC without subnets given
    # for them: its private subnets).
    control_plane_subnet_ids: list[pulumi.Output[str]]
    entry_subnet_ids: list[pulumi.Output[str]]
    nat_gateway_count: int

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Network", name, None, opts)
        self._name = name
        if args.existing_vpc_id is not None:
            self._adopt_existing(args)
        else:
            self._create(args)
        self.register_outputs({"vpcId": self.vpc_id, "zones": self.zones, "privateSubnetIds": self.private_subnet_ids})

    def _zones_of(self, key: str, subnet_ids: list[str], vpc_id: str) -> list[str]:
        zones: list[str] = []
        for subnet_id in subnet_ids:
            # Filtering on the VPC makes AWS refuse a subnet of another VPC.
            subnet = aws.ec2.get_subnet(id=subnet_id, vpc_id=vpc_id, opts=pulumi.InvokeOptions(parent=self))
            if subnet.availability_zone in zones:
                raise ConfigError(key, f"must name subnets in distinct zones; two are in {subnet.availability_zone}")
            zones.append(subnet.availability_zone)
        return zones

    def _adopt_existing(self, args: NetworkArgs) -> None:
        self.zones = self._zones_of("network.existingPrivateSubnetIds", args.existing_private_subnet_ids, args.existing_vpc_id)
        edges = {}
        for key, ids in (("network.existingControlPlaneSubnetIds", args.existing_control_plane_subnet_ids),
                         ("network.existingEntrySubnetIds", args.existing_entry_subnet_ids)):
            if not ids:
                edges[key] = args.existing_private_subnet_ids
                continue
            zones = self._zones_of(key, ids, args.existing_vpc_id)
            if sorted(zones) != sorted(self.zones):
                raise ConfigError(key, f"must name one subnet in each zone of network.existingPrivateSubnetIds ({', '.join(self.zones)})")
            edges[key] = [ids[zones.index(zone)] for zone in self.zones]  # in the zones' order
        self.vpc_id = pulumi.Output.from_input(args.existing_vpc_id)
        self.private_subnet_ids = [pulumi.Output.from_input(s) for s in args.existing_private_subnet_ids]
        self.public_subnet_ids = []
        self.control_plane_subnet_ids = [pulumi.Output.from_input(s) for s in edges["network.existingControlPlaneSubnetIds"]]
        self.entry_subnet_ids = [pulumi.Output.from_input(s) for s in edges["network.existingEntrySubnetIds"]]
        self.nat_gateway_count = 0

    def _create(self, args: NetworkArgs) -> None:
        name = self._name
        child = pulumi.ResourceOptions(parent=self)
        available = aws.get_availability_zones(
            state="available",
            # Local and Wavelength zones are opt-in and lack most services; keep to the region's own zones.
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=pulumi.InvokeOptions(parent=self)).names
        if len(available) < args.zone_count:
            raise ConfigError("zones", f"must be at most {len(available)}, the zones this region offers", args.zone_count)
        self.zones = sorted(available)[:args.zone_count]

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                          tags={"Name": name}, opts=child)
        self.vpc_id = vpc.id
        # Adopting the default security group with no rules closes it: nothing may use it by accident.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-closed"}, opts=child)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": name}, opts=child)

        layout = subnet_layout(args.vpc_cidr, args.zone_count)
        public_subnets, private_subnets, control_plane_subnets, entry_subnets = [], [], [], []
        for zone, cidrs in zip(self.zones, layout):
            suffix = zone[-1]
            public_subnets.append(aws.ec2.Subnet(
                f"{name}-public-{suffix}", vpc_id=vpc.id, cidr_block=cidrs.public, availability_zone=zone,
                # Nothing gets a public IP implicitly; NAT gateways use their own Elastic IPs.
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"}, opts=child))
            private_subnets.append(aws.ec2.Subnet(
                f"{name}-private-{suffix}", vpc_id=vpc.id, cidr_block=cidrs.private, availability_zone=zone,
                tags={"Name": f"{name}-private-{zone}"}, opts=child))
            control_plane_subnets.append(aws.ec2.Subnet(
                f"{name}-control-plane-{suffix}", vpc_id=vpc.id, cidr_block=cidrs.control_plane, availability_zone=zone,
                tags={"Name": f"{name}-control-plane-{zone}"}, opts=child))
            # The AWS Load Balancer Controller puts an internal load balancer it is asked for here too (its tag).
            entry_subnets.append(aws.ec2.Subnet(
                f"{name}-entry-{suffix}", vpc_id=vpc.id, cidr_block=cidrs.entry, availability_zone=zone,
                tags={"Name": f"{name}-entry-{zone}", "kubernetes.io/role/internal-elb": "1"}, opts=child))

        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags={"Name": f"{name}-public"}, opts=child)
        for subnet, zone in zip(public_subnets, self.zones):
            aws.ec2.RouteTableAssociation(f"{name}-public-rta-{zone[-1]}", subnet_id=subnet.id,
                                          route_table_id=public_routes.id, opts=child)

        nat_zones = self.zones if args.nat_gateways == "per-zone" else self.zones[:1]
        nat_gateways = []
        for zone, subnet in zip(nat_zones, public_subnets):
            address = aws.ec2.Eip(f"{name}-nat-eip-{zone[-1]}", domain="vpc", tags={"Name": f"{name}-nat-{zone}"}, opts=child)
            nat_gateways.append(aws.ec2.NatGateway(
                f"{name}-nat-{zone[-1]}", allocation_id=address.allocation_id, subnet_id=subnet.id,
                tags={"Name": f"{name}-nat-{zone}"}, opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway])))
        self.nat_gateway_count = len(nat_gateways)

        private_route_tables = []
        for index, (zone, subnet) in enumerate(zip(self.zones, private_subnets)):
            # Each zone leaves through its own NAT when there is one per zone, so a zone outage stays local.
            nat = nat_gateways[index] if len(nat_gateways) > 1 else nat_gateways[0]
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{zone[-1]}", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags={"Name": f"{name}-private-{zone}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-rta-{zone[-1]}", subnet_id=subnet.id, route_table_id=table.id, opts=child)
            # The zone's edge subnets route as its private one (to the VPC, the S3 endpoint, and routes a platform team
            # adds there to its clients' networks).
            for kind, edge in (("control-plane", control_plane_subnets[index]), ("entry", entry_subnets[index])):
                aws.ec2.RouteTableAssociation(f"{name}-{kind}-rta-{zone[-1]}", subnet_id=edge.id, route_table_id=table.id, opts=child)
            private_route_tables.append(table)

        # DAG syncs, logs and image layers reach S3 without NAT charges or the internet.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=[t.id for t in private_route_tables],
            tags={"Name": f"{name}-s3"}, opts=child)
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.public_subnet_ids = [s.id for s in public_subnets]
        self.control_plane_subnet_ids = [s.id for s in control_plane_subnets]
        self.entry_subnet_ids = [s.id for s in entry_subnets]

