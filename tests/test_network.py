"""Tests the Network component: subnets in distinct zones (the control plane and the load balancer in their own), NAT per
zone or shared, the S3 endpoint, an existing VPC."""

from __future__ import annotations

import ipaddress

import pytest

from components.config import ConfigError
from components.network import Network, NetworkArgs, subnet_layout
from tools.mocks import PlatformMocks
from tests.conftest import stack_config
from tools.offline import run, run_stack_config

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"


def plan_network(args: NetworkArgs, mocks: PlatformMocks | None = None):
    return run(lambda: Network("net", args), {"aws:region": args.region}, mocks=mocks)


class TestSubnetLayout:
    """Tests how a new VPC's CIDR is cut into subnets."""

    def test_layout_of_a_slash_16(self):
        """Private subnets take 1/8 of the VPC each, public ones 1/64, the control plane's and the entry's 1/128 each, from
        blocks the private ones never reach."""
        assert [(z.private, z.public, z.control_plane, z.entry) for z in subnet_layout("10.0.0.0/16", 3)] == [
            ("10.0.0.0/19", "10.0.192.0/22", "10.0.224.0/23", "10.0.240.0/23"),
            ("10.0.32.0/19", "10.0.196.0/22", "10.0.226.0/23", "10.0.242.0/23"),
            ("10.0.64.0/19", "10.0.200.0/22", "10.0.228.0/23", "10.0.244.0/23")]

    @pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/18", "192.168.0.0/20"], ids=["slash16", "slash18", "slash20"])
    def test_six_zones_fit_without_overlap(self, cidr):
        """Even six zones get disjoint subnets inside the VPC."""
        vpc = ipaddress.ip_network(cidr)
        subnets = [ipaddress.ip_network(c) for zone in subnet_layout(cidr, 6)
                   for c in (zone.private, zone.public, zone.control_plane, zone.entry)]
        assert all(s.subnet_of(vpc) for s in subnets)
        # Room for what lives there: an ALB asks a /27, EKS's control plane a /28.
        assert min(s.num_addresses for s in subnets) >= 32
        assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])


class TestNewVpc:
    """Tests a new VPC as the stacks build it."""

    @pytest.mark.parametrize("stack_fixture, zones", [("dev_plan", 2), ("prod_plan", 3)], ids=["dev", "prod"])
    def test_subnets_in_distinct_zones(self, request, stack_fixture, zones):
        """Each zone gets exactly one subnet of each kind, and the zones really differ."""
        plan = request.getfixturevalue(stack_fixture)
        for kind in ("private", "public", "control-plane", "entry"):
            subnet_zones = [s.inputs["availabilityZone"] for s in plan.of_type(SUBNET) if f"-{kind}-" in s.name]
            assert len(subnet_zones) == zones and len(set(subnet_zones)) == zones
        assert plan.outputs["zones"] == sorted({s.inputs["availabilityZone"] for s in plan.of_type(SUBNET)})

    def test_nothing_gets_a_public_ip_implicitly(self, prod_plan):
        """Public subnets do not hand out public IPs to what is launched in them."""
        public = [s for s in prod_plan.of_type(SUBNET) if "-public-" in s.name]
        assert [s.inputs["mapPublicIpOnLaunch"] for s in public] == [False, False, False]

    def test_prod_has_a_nat_per_zone_and_each_zone_uses_its_own(self, prod_plan):
        """In prod every private route table leaves through the NAT gateway of its own zone."""
        nats = prod_plan.of_type(NAT)
        assert len(nats) == 3
        zone_of_public_subnet = {s.id: s.inputs["availabilityZone"] for s in prod_plan.of_type(SUBNET)}
        zone_of_nat = {n.id: zone_of_public_subnet[n.inputs["subnetId"]] for n in nats}
        for table in (t for t in prod_plan.of_type(ROUTE_TABLE) if "-private-rt-" in t.name):
            [route] = table.inputs["routes"]
            assert zone_of_nat[route["natGatewayId"]].endswith(table.name[-1])

    def test_each_zone_s_edge_subnets_route_as_its_private_one(self, prod_plan):
        """The control plane's and the entry's subnets of a zone share that zone's private route table."""
        tables = {t.id: t.name for t in prod_plan.of_type(ROUTE_TABLE)}
        subnets = {s.id: s.name for s in prod_plan.of_type(SUBNET)}
        routed = {subnets[a.inputs["subnetId"]].removeprefix("airflow-prod-network-"): tables[a.inputs["routeTableId"]].removeprefix("airflow-prod-network-")
                  for a in prod_plan.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
        assert {subnet: table for subnet, table in routed.items() if not subnet.startswith("public")} == {
            f"{kind}-{zone}": f"private-rt-{zone}" for kind in ("private", "control-plane", "entry") for zone in "abc"}

    def test_the_load_balancer_subnets_carry_the_controller_s_tag(self, prod_plan):
        """An internal load balancer the controller is asked for lands in the entry subnets, not among the pods."""
        tagged = sorted(s.name.removeprefix("airflow-prod-network-") for s in prod_plan.of_type(SUBNET)
                        if "kubernetes.io/role/internal-elb" in s.inputs["tags"])
        assert tagged == ["entry-a", "entry-b", "entry-c"]

    def test_dev_shares_one_nat(self, dev_plan):
        """In dev one NAT gateway serves both zones."""
        [nat] = dev_plan.of_type(NAT)
        routes = [t.inputs["routes"][0]["natGatewayId"] for t in dev_plan.of_type(ROUTE_TABLE) if "-private-rt-" in t.name]
        assert routes == [nat.id, nat.id]

    def test_s3_gateway_endpoint_on_every_private_route_table(self, prod_plan):
        """DAG syncs reach S3 through the gateway endpoint from every zone."""
        [endpoint] = prod_plan.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        private_tables = {t.id for t in prod_plan.of_type(ROUTE_TABLE) if "-private-rt-" in t.name}
        assert endpoint.inputs["serviceName"] == "com.amazonaws.eu-west-1.s3"
        assert endpoint.inputs["vpcEndpointType"] == "Gateway"
        assert set(endpoint.inputs["routeTableIds"]) == private_tables and len(private_tables) == 3

    def test_default_security_group_is_closed(self, prod_plan):
        """The VPC's default security group is adopted with no rules."""
        [group] = prod_plan.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
        assert "ingress" not in group.inputs and "egress" not in group.inputs

    def test_more_zones_than_the_region_has(self):
        """Asking for more zones than the region offers is refused with a sentence."""

        class ThreeZones(PlatformMocks):
            def __init__(self, region):
                super().__init__(region)
                self.zone_names = self.zone_names[:3]

        with pytest.raises(ConfigError) as caught:
            plan_network(NetworkArgs(region="eu-west-1", zone_count=4, vpc_cidr="10.0.0.0/16"), mocks=ThreeZones("eu-west-1"))
        assert str(caught.value) == "Config key 'airflow-platform:zones' must be at most 3, the zones this region offers (got 4)."


class TestExistingVpc:
    """Tests adopting an existing VPC's private subnets."""

    SUBNETS = ["subnet-00000000000000001", "subnet-00000000000000002", "subnet-00000000000000003"]

    def test_adopts_subnets_and_creates_nothing(self):
        """With an existing VPC no network resource is created and the subnets' zones are looked up."""
        plan = plan_network(NetworkArgs(region="eu-west-1", zone_count=3, existing_vpc_id="vpc-0123456789abcdef0",
                                        existing_private_subnet_ids=self.SUBNETS))
        assert [r.type for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers")] == []

    def test_subnets_sharing_a_zone_are_refused(self):
        """Two subnets in one zone would not survive that zone's loss: refused."""
        mocks = PlatformMocks("eu-west-1", subnet_zones=dict(zip(self.SUBNETS, ["eu-west-1a", "eu-west-1b", "eu-west-1a"])))
        with pytest.raises(ConfigError) as caught:
            plan_network(NetworkArgs(region="eu-west-1", zone_count=3, existing_vpc_id="vpc-0123456789abcdef0",
                                     existing_private_subnet_ids=self.SUBNETS), mocks=mocks)
        assert str(caught.value) == ("Config key 'airflow-platform:network.existingPrivateSubnetIds' "
                                     "must name subnets in distinct zones; two are in eu-west-1a.")

    def test_whole_program_on_an_existing_vpc(self, plan_with):
        """The whole prod program runs on an existing VPC: given no subnets of their own, the control plane and the load
        balancer share the private ones."""
        plan = plan_with("prod", {"airflow-platform:network": {
            "existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": self.SUBNETS}})
        assert plan.of_type("aws:ec2/vpc:Vpc") == []
        [cluster] = plan.of_type("aws:eks/cluster:Cluster")
        [balancer] = plan.of_type("aws:lb/loadBalancer:LoadBalancer")
        assert (cluster.inputs["vpcConfig"]["subnetIds"], balancer.inputs["subnets"]) == (self.SUBNETS, self.SUBNETS)
        assert plan.outputs["zones"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

    CONTROL_PLANE = ["subnet-00000000000000011", "subnet-00000000000000012", "subnet-00000000000000013"]
    ENTRY = ["subnet-00000000000000021", "subnet-00000000000000022", "subnet-00000000000000023"]

    def test_an_existing_vpc_s_edge_subnets(self):
        """Given subnets for the control plane and the load balancer, the cluster and the load balancer use them, in the
        private subnets' zone order, and each gets a flow log."""
        config = stack_config("prod")
        config["airflow-platform:network"] = {
            "existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": self.SUBNETS,
            "existingControlPlaneSubnetIds": self.CONTROL_PLANE, "existingEntrySubnetIds": list(reversed(self.ENTRY))}
        zones = {subnet: f"eu-west-1{'abc'[index % 3]}" for index, subnet in enumerate(self.SUBNETS + self.CONTROL_PLANE + self.ENTRY)}
        plan = run_stack_config(config, "prod", mocks=PlatformMocks("eu-west-1", subnet_zones=zones))
        [cluster] = plan.of_type("aws:eks/cluster:Cluster")
        [balancer] = plan.of_type("aws:lb/loadBalancer:LoadBalancer")
        assert (cluster.inputs["vpcConfig"]["subnetIds"], balancer.inputs["subnets"]) == (self.CONTROL_PLANE, self.ENTRY)
        assert sorted(f.inputs["subnetId"] for f in plan.of_type("aws:ec2/flowLog:FlowLog")) == sorted(self.SUBNETS + self.CONTROL_PLANE + self.ENTRY)

    def test_edge_subnets_outside_the_private_zones_are_refused(self):
        """A control-plane subnet in a zone without a private one (or two in one zone) is refused with a sentence."""
        zones = dict(zip(self.SUBNETS + self.CONTROL_PLANE, ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1a", "eu-west-1b", "eu-west-1d"]))
        with pytest.raises(ConfigError) as caught:
            plan_network(NetworkArgs(region="eu-west-1", zone_count=3, existing_vpc_id="vpc-0123456789abcdef0",
                                     existing_private_subnet_ids=self.SUBNETS, existing_control_plane_subnet_ids=self.CONTROL_PLANE),
                         mocks=PlatformMocks("eu-west-1", subnet_zones=zones))
        assert str(caught.value) == ("Config key 'airflow-platform:network.existingControlPlaneSubnetIds' must name one subnet in each "
                                     "zone of network.existingPrivateSubnetIds (eu-west-1a, eu-west-1b, eu-west-1c).")
