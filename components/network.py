"""Network: a VPC with a private and a public subnet in every zone, NAT, and an S3 gateway endpoint.

Or, with `existingVpcId`, the given private subnets, after checking they really lie in distinct zones.
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
# (NAT gateways and load balancers only), block 7 is left free for later.
_PRIVATE_SPLIT_BITS = 3
_PUBLIC_BLOCK = 6
_PUBLIC_SPLIT_BITS = 3


def subnet_layout(vpc_cidr: str, zone_count: int) -> list[tuple[str, str]]:
    """(private CIDR, public CIDR) for each zone of a new VPC."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    blocks = list(vpc.subnets(prefixlen_diff=_PRIVATE_SPLIT_BITS))
    public = list(blocks[_PUBLIC_BLOCK].subnets(prefixlen_diff=_PUBLIC_SPLIT_BITS))
    return [(str(blocks[i]), str(public[i])) for i in range(zone_count)]


@dataclass
class NetworkArgs:
    region: str
    zone_count: int
    nat_gateways: str = "single"  # "single" or "per-zone"
    vpc_cidr: Optional[str] = None
    existing_vpc_id: Optional[str] = None
    existing_private_subnet_ids: list[str] = field(default_factory=list)


class Network(pulumi.ComponentResource):
    """The VPC side of the platform; `zones`, `private_subnet_ids` and `public_subnet_ids` are in the same order."""

    vpc_id: pulumi.Output[str]
    zones: list[str]
    private_subnet_ids: list[pulumi.Output[str]]
    # A new VPC's public subnets (NAT gateways, an internet-facing entry); none for an existing VPC, whose are not known.
    public_subnet_ids: list[pulumi.Output[str]]
    nat_gateway_count: int

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Network", name, None, opts)
        self._name = name
        if args.existing_vpc_id is not None:
            self._adopt_existing(args)
        else:
            self._create(args)
        self.register_outputs({"vpcId": self.vpc_id, "zones": self.zones, "privateSubnetIds": self.private_subnet_ids})

    def _adopt_existing(self, args: NetworkArgs) -> None:
        zones = []
        for subnet_id in args.existing_private_subnet_ids:
            # Filtering on the VPC makes AWS refuse a subnet of another VPC.
            subnet = aws.ec2.get_subnet(id=subnet_id, vpc_id=args.existing_vpc_id, opts=pulumi.InvokeOptions(parent=self))
            if subnet.availability_zone in zones:
                raise ConfigError("network.existingPrivateSubnetIds", f"must name subnets in distinct zones; two are in {subnet.availability_zone}")
            zones.append(subnet.availability_zone)
        self.zones = zones
        self.vpc_id = pulumi.Output.from_input(args.existing_vpc_id)
        self.private_subnet_ids = [pulumi.Output.from_input(s) for s in args.existing_private_subnet_ids]
        self.public_subnet_ids = []
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
        public_subnets, private_subnets = [], []
        for zone, (private_cidr, public_cidr) in zip(self.zones, layout):
            suffix = zone[-1]
            public_subnets.append(aws.ec2.Subnet(
                f"{name}-public-{suffix}", vpc_id=vpc.id, cidr_block=public_cidr, availability_zone=zone,
                # Nothing gets a public IP implicitly; NAT gateways use their own Elastic IPs.
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"}, opts=child))
            private_subnets.append(aws.ec2.Subnet(
                f"{name}-private-{suffix}", vpc_id=vpc.id, cidr_block=private_cidr, availability_zone=zone,
                tags={"Name": f"{name}-private-{zone}", "kubernetes.io/role/internal-elb": "1"}, opts=child))

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
            private_route_tables.append(table)

        # DAG syncs, logs and image layers reach S3 without NAT charges or the internet.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint", vpc_id=vpc.id, service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway", route_table_ids=[t.id for t in private_route_tables],
            tags={"Name": f"{name}-s3"}, opts=child)
        self.private_subnet_ids = [s.id for s in private_subnets]
        self.public_subnet_ids = [s.id for s in public_subnets]

