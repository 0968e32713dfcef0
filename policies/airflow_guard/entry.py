"""The way in: load balancers that stay internal, and listeners that speak only HTTPS with a TLS 1.3 policy.

The platform's entry is an Application Load Balancer the program owns (components/entry.py), which these policies
read as declared. The AWS Load Balancer Controller would also create load balancers, outside the stack, for a
Service of type LoadBalancer or an Ingress of class alb: the pack sees those objects when the program declares them
(directly, or through a ConfigFile, ConfigGroup or helm.v4 Chart, whose objects are resources of the stack) and, for
a Helm Release, only through its values, read by the charts' convention (`<component>.service.type` with its
`annotations`, `<component>.ingress` with `ingressClassName` and `annotations`). An object a chart makes up beyond its
values is invisible here (helm.py).

A listener rule is judged with the listener it is attached to when its listener_arn was computed from a listener of
the stack; a rule on a listener of another stack (a literal ARN) is not judged.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Optional

from .documents import as_list
from .helm import RELEASE, entries, values
from .model import UNKNOWN, Resource, Stack, known, path, policy
from .network import LOAD_BALANCERS

LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
SERVICE_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
INGRESS_SCHEME = "alb.ingress.kubernetes.io/scheme"
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
ALB_CLASS = "alb"  # the IngressClass the controller's chart creates (ingressClass: alb)
INTERNAL = "internal"
# What AWS gives an HTTPS or TLS listener created through the API without ssl_policy: TLS 1.0 and CBC ciphers.
API_DEFAULT_SSL_POLICY = "ELBSecurityPolicy-2016-08"
# The ELB security policies with TLS 1.3 that AWS recommends, each at least as strict as
# ELBSecurityPolicy-TLS13-1-2-2021-06 (TLS 1.3, and TLS 1.2 with forward-secret AEAD ciphers only): AWS Security Hub
# control ELB.17, "Application and Network Load Balancers with listeners should use recommended security policies"
# (https://docs.aws.amazon.com/securityhub/latest/userguide/elb-controls.html#elb-17), which lists the 2021-06 and
# FIPS 2023-04 ones, and their hybrid post-quantum (ML-KEM) 2025-09 versions from "Security policies for your
# Application Load Balancer" (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html).
# The TLS13-1-2-Ext*, TLS13-1-1, TLS13-1-0 and every pre-TLS-1.3 policy (ELBSecurityPolicy-2016-08, TLS-1-2-*,
# FS-*) accept older protocols or CBC/SHA-1 ciphers, and are not approved.
APPROVED_SSL_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
)
ENCRYPTED = ("HTTPS", "TLS")


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a known mapping; {} otherwise (unset annotations, or values that are not a map)."""
    return value if isinstance(value, Mapping) else {}


def _scheme_problem(what: str, annotations: Any, key: str) -> Iterator[str]:
    scheme = known(_mapping(known(annotations)).get(key))
    if not scheme:
        yield f"{what} has no {key} annotation: the load balancer the controller creates for it is not declared {INTERNAL}"
    elif scheme != INTERNAL:
        yield f"{what} asks the controller for a load balancer with {key}: {scheme}"


def _ingress_class(spec: Mapping[str, Any], annotations: Any) -> Any:
    """spec.ingressClassName, else the older kubernetes.io/ingress.class annotation (unknown ones pass as unset)."""
    given = spec.get("ingressClassName")
    return given if isinstance(given, str) and given else _mapping(annotations).get(INGRESS_CLASS_ANNOTATION)


def _release_load_balancers(release: Resource) -> Iterator[str]:
    """What a release's values ask the controller for, by the charts' convention: a block with `type: LoadBalancer` is a
    Service, a block naming class alb that is not switched off (`enabled: false`) an Ingress; each with its `annotations`."""
    for where, _, block in entries(values(release), "values"):
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "LoadBalancer":
            yield from _scheme_problem(f"release {release.name}: {where} (type LoadBalancer)", block.get("annotations"), SERVICE_SCHEME)
        elif _ingress_class(block, block.get("annotations")) == ALB_CLASS and known(block.get("enabled")) is not False:
            yield from _scheme_problem(f"release {release.name}: {where} (class {ALB_CLASS})", block.get("annotations"), INGRESS_SCHEME)


@policy("lb-internal", types=LOAD_BALANCERS + (SERVICE, INGRESS, RELEASE), severity="critical",
        description="Load balancers are internal: an AWS load balancer of the stack sets internal true unless the policy's "
                    "allowInternetFacing is on, and a Service of type LoadBalancer or an Ingress of class alb (declared, or "
                    "asked for in a Helm release's values) carries the controller's internal scheme annotation, whatever that "
                    "switch says: those load balancers are outside the stack, where no other policy sees them.",
        remediation="Keep the entry's load balancer internal (entry.internetFacing false; set this policy's allowInternetFacing "
                    "only for a stack that must be reached from the internet, its security group still admitting only "
                    "entry.clientCidrs). Reach a Kubernetes Service through the entry (a TargetGroupBinding) instead of type "
                    f"LoadBalancer or an alb Ingress; where one is needed, annotate it {SERVICE_SCHEME}: {INTERNAL} or "
                    f"{INGRESS_SCHEME}: {INTERNAL}.",
        config_schema={"allowInternetFacing": {"type": "boolean", "default": False,
                                               "description": "Let the stack's own AWS load balancers be internet-facing "
                                                              "(Kubernetes-made ones must stay internal)."}})
def internal(resource: Resource, _: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    if resource.type in LOAD_BALANCERS:
        if resource.get("loadBalancerType") == "gateway":
            return  # a Gateway Load Balancer has no scheme
        if config["allowInternetFacing"]:
            return
        flag = resource.get("internal")
        if flag is None:
            yield f"load balancer {resource.name} is internet-facing: internal is unset, and AWS's default is internet-facing"
        elif flag is not True:
            yield f"load balancer {resource.name} is internet-facing (internal is {str(flag).lower()})"
    elif resource.type == SERVICE:
        if resource.get("spec.type") == "LoadBalancer":
            yield from _scheme_problem(f"Service {resource.name} (type LoadBalancer)", resource.get("metadata.annotations"), SERVICE_SCHEME)
    elif resource.type == INGRESS:
        annotations = resource.get("metadata.annotations")
        if _ingress_class(_mapping(resource.get("spec")), annotations) == ALB_CLASS:
            yield from _scheme_problem(f"Ingress {resource.name} (class {ALB_CLASS})", annotations, INGRESS_SCHEME)
    else:
        yield from _release_load_balancers(resource)


def _protocol(listener: Resource) -> str:
    """The listener's protocol; an ALB listener without one is HTTP (AWS's default)."""
    return str(known(listener.props.get("protocol")) or "HTTP").upper()


def _plain_http_actions(actions: Any) -> Iterator[tuple[int, str]]:
    """(number, what it does) for each action that serves plain HTTP instead of redirecting it to HTTPS."""
    for number, action in enumerate(as_list(actions), 1):
        kind = known(action.get("type"))
        if kind != "redirect":
            yield number, str(kind)
            continue
        protocol = path(action, "redirect.protocol")
        if protocol in (None, "", "#{protocol}"):
            yield number, "a redirect that keeps HTTP"
        elif str(protocol).upper() != "HTTPS":
            yield number, f"a redirect to {protocol}"


@policy("lb-listener-https-tls13", types=LISTENERS + LISTENER_RULES, needs_stack=True, severity="high",
        checkov=("CKV_AWS_2", "CKV_AWS_103", "CKV2_AWS_20"),
        description="Load balancer listeners serve HTTPS (or TLS) with a certificate and an approved TLS 1.3 security "
                    "policy; a plain HTTP listener, and every rule on one, only redirects to HTTPS.",
        remediation="Serve the UIs on 443 with protocol HTTPS, ssl_policy ELBSecurityPolicy-TLS13-1-2-2021-06 (or a stricter "
                    "TLS13-1-3 or Res policy) and certificate_arn, and make the port-80 listener's only default action a "
                    "redirect with protocol HTTPS (HTTP_301); forward and fixed-response belong on the HTTPS listener. "
                    f"Without ssl_policy AWS applies {API_DEFAULT_SSL_POLICY}, which still accepts TLS 1.0.",
        config_schema={"sslPolicies": {"type": "array", "items": {"type": "string"}, "default": list(APPROVED_SSL_POLICIES),
                                       "description": "The ELB security policies an HTTPS or TLS listener may use."}})
def listener_https(resource: Resource, stack: Optional[Stack], config: Mapping[str, Any]) -> Iterable[str]:
    if resource.type in LISTENER_RULES:
        for listener in stack.sources(resource, "listenerArn"):
            if listener.type in LISTENERS and _protocol(listener) == "HTTP":
                for number, what in _plain_http_actions(resource.props.get("actions")):
                    yield (f"listener rule {resource.name} on HTTP listener {listener.name} answers plain HTTP with {what} "
                           f"(action {number}), not a redirect to HTTPS")
        return
    protocol = _protocol(resource)
    if protocol in ENCRYPTED:
        ssl_policy = known(resource.props.get("sslPolicy"))
        if ssl_policy not in config["sslPolicies"]:
            shown = ssl_policy or f"unset ({API_DEFAULT_SSL_POLICY})"
            yield f"listener {resource.name} serves {protocol} with TLS policy {shown}, not an approved TLS 1.3 policy"
        # A certificate still to be issued (its ARN unknown in a first preview) is a certificate.
        certificate = resource.props.get("certificateArn")
        if certificate is not UNKNOWN and not certificate:
            yield f"listener {resource.name} serves {protocol} without a certificate_arn"
    elif protocol == "HTTP":
        for number, what in _plain_http_actions(resource.props.get("defaultActions")):
            yield f"listener {resource.name} answers plain HTTP with {what} (default action {number}), not a redirect to HTTPS"
    else:
        yield f"listener {resource.name} serves {protocol}, which is neither HTTPS nor TLS"

