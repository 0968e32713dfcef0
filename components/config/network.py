"""The `network` key: the VPC."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, Field

from components.config.fields import LOG_RETENTION_DAYS, matching, one_of, private_ipv4_network
from components.config.model import Model


SubnetId = Annotated[str, matching(r"subnet-[0-9a-f]{8,17}", "must be a subnet id, like subnet-0123456789abcdef0")]


class NetworkConfig(Model):
    """Where the platform runs: a new VPC (default) or an existing one."""

    vpc_cidr: Optional[Annotated[str, AfterValidator(private_ipv4_network)]] = Field(
        None, description="CIDR of the new VPC (/16 to /20, private range); each zone gets a private subnet of 1/8 of it, a public one of "
                          "1/64, and one of 1/128 each for the control plane's interfaces and the internal load balancer.",
        json_schema_extra={"defaultText": "10.0.0.0/16 (unless existingVpcId is set)"})
    nat_gateways: Optional[Literal["single", "per-zone"]] = Field(
        None, description="NAT gateways of a new VPC: one shared, or one per zone so a zone loss keeps egress.",
        json_schema_extra={"defaultText": "per-zone in production, else single"})
    existing_vpc_id: Optional[Annotated[str, matching(r"vpc-[0-9a-f]{8,17}", "must be a VPC id, like vpc-0123456789abcdef0")]] = Field(
        None, description="Use this VPC instead of creating one; then existingPrivateSubnetIds is required.")
    existing_private_subnet_ids: list[SubnetId] = Field(
        default_factory=list, description="With existingVpcId: one private subnet per zone, in distinct zones, routed to a NAT.")
    existing_control_plane_subnet_ids: list[SubnetId] = Field(
        default_factory=list, description="With existingVpcId: one subnet per zone of the private ones for the EKS control plane's "
                                          "interfaces (at least /28), which the network policies then admit by its range. Unset: "
                                          "the private subnets, whose pods then pass those rules too.")
    existing_entry_subnet_ids: list[SubnetId] = Field(
        default_factory=list, description="With existingVpcId: one subnet per zone of the private ones for the internal load "
                                          "balancer (at least /27), admitted by its range likewise. Unset: the private subnets.")
    flow_log_retention_days: Optional[Annotated[int, one_of(LOG_RETENTION_DAYS, "CloudWatch Logs retention periods")]] = Field(
        None, description="Retention of the flow log group (every accepted and rejected flow of the VPC, or of the existing VPC's given subnets, "
                          "encrypted with its own key; at least 30 in production); one of CloudWatch's values: "
                          f"{', '.join(map(str, LOG_RETENTION_DAYS))}.",
        json_schema_extra={"defaultText": "90 in production, else 14"})
