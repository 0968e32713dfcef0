"""The `entry` key: the one private HTTPS way in to the Airflow UI/API and Grafana (components/entry.py builds it)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Optional

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from components.config.fields import matching
from components.config.model import Model

# The UIs' names in the entry's domain: airflow.<domain> and grafana.<domain>.
AIRFLOW_LABEL, GRAFANA_LABEL = "airflow", "grafana"
# Each client range takes two rules (HTTPS, and HTTP for the redirect) of the 60 a security group allows by default.
MAX_CLIENT_RANGES = 30
# A range wider than this is most of the internet, not a VPN, an office or a peered network.
WIDEST_CLIENT_PREFIX = 8


def client_range(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        raise PydanticCustomError("config", "must be an IPv4 CIDR block with no host bits set, like 10.20.0.0/16")
    if network.prefixlen < WIDEST_CLIENT_PREFIX:
        raise PydanticCustomError("config", f"must be a client range of /{WIDEST_CLIENT_PREFIX} or narrower (a VPN, an office, a peered "
                                            "network), never 0.0.0.0/0 or a large part of the internet")
    return value


class EntryConfig(Model):
    """An Application Load Balancer the program owns, with its certificate, DNS names and client security group."""

    hosted_zone_id: Annotated[str, matching(r"Z[A-Z0-9]{1,31}", "must be a Route 53 hosted zone id, like Z0123456789ABCDEFGHIJ")] = Field(
        description="The Route 53 hosted zone of `domain` (a private zone for an internal entry): the UIs' records, and the "
                    "certificate's validation records when certificateArn is unset, are created in it.")
    domain: Annotated[str, matching(r"(?=.{4,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
                                    "must be a lower-case DNS domain of at least two labels, like data.example.com")] = Field(
        description="The hosted zone's domain: the Airflow UI/API is served at airflow.<domain> and Grafana at grafana.<domain>.")
    certificate_arn: Optional[Annotated[str, matching(
        r"arn:aws[a-z-]*:acm:[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d:\d{12}:certificate/[0-9a-f-]{36}",
        "must be an ACM certificate ARN, like arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f")]] = Field(
        None, description="An existing ACM certificate in the stack's region covering both names. Unset: the program requests one "
                          "with DNS validation in hostedZoneId.")
    client_cidrs: list[Annotated[str, AfterValidator(client_range)]] = Field(
        min_length=1, max_length=MAX_CLIENT_RANGES,
        description="The only client ranges the load balancer admits, on 443 and on 80 (which only redirects): the VPN, offices, "
                    f"peered networks. /{WIDEST_CLIENT_PREFIX} or narrower; 0.0.0.0/0 is refused.")
    internet_facing: bool = Field(
        False, description="Place the load balancer in the public subnets with a public address. Still only clientCidrs get in; "
                           "needs a VPC the program creates (network.existingVpcId unset).")

    @property
    def airflow_host(self) -> str:
        return f"{AIRFLOW_LABEL}.{self.domain}"

    @property
    def grafana_host(self) -> str:
        return f"{GRAFANA_LABEL}.{self.domain}"
