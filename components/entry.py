"""Entry: the one private HTTPS way in to the Airflow UI/API (airflow.<domain>) and Grafana (grafana.<domain>).

Pulumi owns the Application Load Balancer and binds it to the two Services through TargetGroupBindings; no Ingress
asks the AWS Load Balancer Controller to build one. So the load balancer, its scheme and subnets, its two listeners
and TLS policy, its security group and the rules that let it reach the pods, the certificate and the DNS records are
all resources of this program: the policy pack sees every one of them on each `pulumi preview`, where an ALB born of
an Ingress would exist only once the controller had reconciled it, outside the plan and the state. Deletion protection
and the header settings are set here explicitly rather than through annotations, and one load balancer serves both
UIs by host rules without an Ingress group. The controller (components/lb_controller.py) does one thing for it: it
keeps the pod IPs of each Service registered in its target group (target type ip: the ALB sends straight to the pods'
container ports; with the VPC CNI a pod's address is on its node's network interface, which carries the cluster
security group on the managed nodes and on the Karpenter nodes alike).

Only `entry.clientCidrs` reach the load balancer, on 443 and on 80 (which answers nothing but a redirect to 443); it
reaches only the two container ports on the cluster security group, and the cluster security group admits it on those
two ports only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config.entry import EntryConfig
from components.lb_controller import TLS_POLICY
from components.names import AIRFLOW_RELEASE
from components.observability_values import KPS_RELEASE

HTTPS_PORT, HTTP_PORT = 443, 80
# The API server of the Airflow chart (ports.apiServer): its Service <release>-api-server listens on the same port as
# the container, and Airflow 3's health endpoint is what the chart's own probes ask.
AIRFLOW_SERVICE = f"{AIRFLOW_RELEASE}-api-server"
AIRFLOW_PORT = 8080
AIRFLOW_HEALTH_PATH = "/api/v2/monitor/health"
# kube-prometheus-stack's grafana subchart: Service <release>-grafana on port 80, to the container's port 3000.
GRAFANA_SERVICE = f"{KPS_RELEASE}-grafana"
GRAFANA_SERVICE_PORT = 80
GRAFANA_PORT = 3000
GRAFANA_HEALTH_PATH = "/api/health"
# Rolling updates replace pods one by one; in-flight UI and API requests are short, so half a minute of draining does.
DEREGISTRATION_DELAY_SECONDS = 30
# Browsers that once reached the entry over HTTPS never try plain HTTP again for a year.
HSTS = "max-age=31536000"
# Load balancer and target group names: at most 32 characters, letters, digits and hyphens.
NAME_LIMIT = 32
_DIGEST_LENGTH = 8
TARGET_GROUP_BINDING = ("elbv2.k8s.aws/v1beta1", "TargetGroupBinding")


def physical_name(environment_name: str, role: str, *replacing: Any) -> str:
    """A load balancer or target group name, <environment name>-<role>-<digest> with the environment name cut to fit:
    the digest is of the settings AWS can change only by replacing the resource, so a change to one of them gives a new
    name and Pulumi can create the replacement before it deletes the old one (names are unique in an account and region).
    Pulumi's own autonames, the logical name and 8 characters, do not fit 32 for most environment names."""
    digest = hashlib.sha256(repr((role, *replacing)).encode()).hexdigest()[:_DIGEST_LENGTH]
    room = NAME_LIMIT - len(role) - _DIGEST_LENGTH - 2
    return f"{environment_name[:room].rstrip('-')}-{role}-{digest}"


def rule_suffix(cidr: str) -> str:
    """10.8.0.0/16 -> 10-8-0-0-16: a client range's rules are named by the range, so removing one range touches only its
    own two rules."""
    return re.sub(r"[./]", "-", cidr)


@dataclass(frozen=True)
class Backend:
    """One UI behind the entry: its host, its Service and the pods' port and health check."""

    key: str  # names the resources: <entry>-<key>-...
    host: str
    namespace: pulumi.Input[str]
    service: str
    service_port: int
    container_port: int
    health_path: str
    priority: int  # of its host rule on the HTTPS listener


@dataclass
class EntryArgs:
    config: EntryConfig
    environment_name: str  # airflow-<environment>: what the load balancer's and target groups' names start with
    vpc_id: pulumi.Input[str]
    # Where an internal load balancer lives: subnets of its own, so the network policies can tell it from the pods.
    entry_subnet_ids: Sequence[pulumi.Input[str]]
    # The new VPC's public subnets, for an internet-facing entry (an existing VPC's are unknown, and the config refuses it).
    public_subnet_ids: Sequence[pulumi.Input[str]]
    cluster_security_group_id: pulumi.Input[str]
    provider: k8s.Provider
    airflow_namespace: pulumi.Input[str]
    monitoring_namespace: pulumi.Input[str]
    # The controller's release (the TargetGroupBinding CRD and its webhook) and the releases that create the Services.
    lb_controller: pulumi.Resource
    services: Sequence[pulumi.Resource] = ()
    protect: bool = False


class Entry(pulumi.ComponentResource):
    airflow_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
    load_balancer_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: EntryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Entry", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        backends = [
            Backend("airflow", cfg.airflow_host, args.airflow_namespace, AIRFLOW_SERVICE, AIRFLOW_PORT, AIRFLOW_PORT,
                    AIRFLOW_HEALTH_PATH, priority=10),
            Backend("grafana", cfg.grafana_host, args.monitoring_namespace, GRAFANA_SERVICE, GRAFANA_SERVICE_PORT, GRAFANA_PORT,
                    GRAFANA_HEALTH_PATH, priority=20),
        ]

        security_group = self._security_group(name, args, backends)
        internal = not cfg.internet_facing
        if not internal and not args.public_subnet_ids:
            raise ValueError("an internet-facing entry needs the VPC's public subnets")
        load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb", name=physical_name(args.environment_name, "entry", "application", internal),
            load_balancer_type="application", internal=internal,
            subnets=list(args.entry_subnet_ids if internal else args.public_subnet_ids),
            security_groups=[security_group.id], ip_address_type="ipv4",
            # Requests with header fields HTTP does not allow are refused, not passed on; so are requests that could be
            # read two ways (request smuggling): the strictest desync mitigation.
            drop_invalid_header_fields=True, desync_mitigation_mode="strictest",
            # The UIs see the client's address in X-Forwarded-For, after whatever the client sent.
            xff_header_processing_mode="append",
            enable_deletion_protection=args.protect, opts=child)

        certificate_arn = cfg.certificate_arn or self._validated_certificate(name, cfg)
        https = aws.lb.Listener(
            f"{name}-https", load_balancer_arn=load_balancer.arn, port=HTTPS_PORT, protocol="HTTPS", ssl_policy=TLS_POLICY,
            certificate_arn=certificate_arn,
            # A request for any other host name is answered here, never forwarded.
            default_actions=[{"type": "fixed-response",
                              "fixed_response": {"content_type": "text/plain", "message_body": "Not found", "status_code": "404"}}],
            routing_http_response_strict_transport_security_header_value=HSTS,
            routing_http_response_x_content_type_options_header_value="nosniff",
            routing_http_response_server_enabled=False, opts=child)
        aws.lb.Listener(
            f"{name}-http", load_balancer_arn=load_balancer.arn, port=HTTP_PORT, protocol="HTTP",
            default_actions=[{"type": "redirect", "redirect": {"port": str(HTTPS_PORT), "protocol": "HTTPS", "status_code": "HTTP_301"}}],
            opts=child)

        for backend in backends:
            target_group = self._target_group(name, args, backend)
            aws.lb.ListenerRule(
                f"{name}-{backend.key}-rule", listener_arn=https.arn, priority=backend.priority,
                conditions=[{"host_header": {"values": [backend.host]}}],
                actions=[{"type": "forward", "target_group_arn": target_group.arn}], opts=child)
            self._binding(name, args, backend, target_group)
            aws.route53.Record(
                f"{name}-{backend.key}-dns", zone_id=cfg.hosted_zone_id, name=backend.host, type="A",
                aliases=[{"name": load_balancer.dns_name, "zone_id": load_balancer.zone_id, "evaluate_target_health": True}],
                opts=child)

        self.airflow_url = pulumi.Output.from_input(f"https://{cfg.airflow_host}")
        self.grafana_url = pulumi.Output.from_input(f"https://{cfg.grafana_host}")
        self.load_balancer_arn = load_balancer.arn
        self.security_group_id = security_group.id
        self.register_outputs({"airflowUrl": self.airflow_url, "grafanaUrl": self.grafana_url,
                               "loadBalancerArn": self.load_balancer_arn, "securityGroupId": self.security_group_id})

    def _security_group(self, name: str, args: EntryArgs, backends: list[Backend]) -> aws.ec2.SecurityGroup:
        """The load balancer's group: in from the client ranges on 443 and 80, out to the cluster's group on the two
        container ports (traffic and health checks); and the cluster's group admits it on those two ports."""
        child = pulumi.ResourceOptions(parent=self)
        # No inline rules, so the provider also drops the allow-all egress rule AWS adds to a new group.
        group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=args.vpc_id,
                                      description="Airflow platform entry: HTTPS (and HTTP, redirected) from the client ranges only",
                                      opts=child)
        for cidr in args.config.client_cidrs:
            for scheme, port in (("https", HTTPS_PORT), ("http", HTTP_PORT)):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{scheme}-from-{rule_suffix(cidr)}", security_group_id=group.id, cidr_ipv4=cidr, ip_protocol="tcp",
                    from_port=port, to_port=port, description=f"{scheme.upper()} from client range {cidr}", opts=child)
        for backend in backends:
            port = backend.container_port
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-to-{backend.key}", security_group_id=group.id, referenced_security_group_id=args.cluster_security_group_id,
                ip_protocol="tcp", from_port=port, to_port=port, description=f"{backend.service} pods", opts=child)
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{backend.key}-from-alb", security_group_id=args.cluster_security_group_id,
                referenced_security_group_id=group.id, ip_protocol="tcp", from_port=port, to_port=port,
                description=f"{backend.service} pods from the entry's load balancer", opts=child)
        return group

    def _validated_certificate(self, name: str, cfg: EntryConfig) -> pulumi.Output[str]:
        """An ACM certificate for both host names, validated through DNS records in the hosted zone; its ARN once issued."""
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-certificate", domain_name=cfg.airflow_host, subject_alternative_names=[cfg.grafana_host],
            validation_method="DNS", key_algorithm="RSA_2048", opts=child)
        records = []
        for label, host in (("airflow", cfg.airflow_host), ("grafana", cfg.grafana_host)):
            # ACM returns the options as a set, in no fixed order: each record takes the option of its own name.
            option = certificate.domain_validation_options.apply(lambda options, host=host: _option_for(options, host))
            records.append(aws.route53.Record(
                f"{name}-{label}-validation", zone_id=cfg.hosted_zone_id, name=option.apply(lambda o: o["name"]),
                type=option.apply(lambda o: o["type"]), records=[option.apply(lambda o: o["value"])], ttl=300,
                # ACM gives a name the same record for every certificate of the account: a replacement certificate,
                # created before the old one is deleted, validates through the record that is already there.
                allow_overwrite=True, opts=child))
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validation", certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn for record in records], opts=child)
        return validation.certificate_arn

    def _target_group(self, name: str, args: EntryArgs, backend: Backend) -> aws.lb.TargetGroup:
        settings = {"port": backend.container_port, "protocol": "HTTP", "protocol_version": "HTTP1", "target_type": "ip",
                    "ip_address_type": "ipv4"}
        return aws.lb.TargetGroup(
            f"{name}-{backend.key}", name=physical_name(args.environment_name, backend.key, *sorted(settings.items())),
            vpc_id=args.vpc_id, **settings, deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check={"enabled": True, "protocol": "HTTP", "port": "traffic-port", "path": backend.health_path, "matcher": "200",
                          "interval": 15, "timeout": 5, "healthy_threshold": 2, "unhealthy_threshold": 3},
            opts=pulumi.ResourceOptions(parent=self))

    def _binding(self, name: str, args: EntryArgs, backend: Backend, target_group: aws.lb.TargetGroup) -> None:
        """The TargetGroupBinding that has the controller register the Service's pod IPs in the target group. No
        `networking`: the security group rules are this program's, not the controller's."""
        api_version, kind = TARGET_GROUP_BINDING
        k8s.apiextensions.CustomResource(
            f"{name}-{backend.key}-binding", api_version=api_version, kind=kind,
            metadata={"name": backend.service, "namespace": backend.namespace},
            spec={"serviceRef": {"name": backend.service, "port": backend.service_port}, "targetGroupARN": target_group.arn,
                  "targetType": "ip"},
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.lb_controller, *args.services],
                # The controller's webhook refuses a change of target group on a binding: a new target group (a replaced
                # one) gets a new binding of the same name.
                replace_on_changes=["spec.targetGroupARN"], delete_before_replace=True))


def _option_for(options: Sequence[aws.acm.outputs.CertificateDomainValidationOption], host: str) -> dict[str, str]:
    """The validation record ACM asks for `host`, from the certificate's domain validation options."""
    for option in options:
        if option.domain_name == host:
            return {"name": option.resource_record_name, "type": option.resource_record_type, "value": option.resource_record_value}
    raise ValueError(f"the certificate has no validation option for {host}")
