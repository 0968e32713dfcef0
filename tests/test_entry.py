"""Tests the private HTTPS entry as the plan declares it: an internal ALB the program owns in front of the Airflow API
server and Grafana, its security groups, certificate, listeners, host rules, target groups and DNS records, and the
TargetGroupBindings through which the load balancer controller fills the target groups, checked against the controller's
CRD and against the Services the real charts render."""

from __future__ import annotations

import copy
import re

import pytest

from components.entry import NAME_LIMIT, physical_name
from components.lb_controller import TLS_POLICY
from tests.conftest import stack_config
from tests.rendered import container, pod
from tests.test_sso import without_sso
from tools.kube_schema import Schemas
from tools.offline import Plan, run_stack_config
from tools.render import CRD_KIND

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
ENTRY_TYPES = [LOAD_BALANCER, LISTENER, RULE, TARGET_GROUP, CERTIFICATE, VALIDATION, RECORD, EGRESS, BINDING]
STACKS = ["dev", "prod"]
CLIENTS = {"dev": ["10.8.0.0/16"], "prod": ["10.8.0.0/16", "10.60.0.0/16"]}
DOMAINS = {"dev": "dev.data.example.com", "prod": "data.example.com"}
ZONES = {"dev": "Z0DEV0000000000EXAMPLE", "prod": "Z0PROD000000000EXAMPLE"}
EXISTING_CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
# What each UI is: its host label, Service and port, the pods' port, and the health check the chart's probes use too.
BACKENDS = {
    "airflow": {"namespace": "airflow", "service": "airflow-api-server", "service_port": 8080, "port": 8080,
                "health": "/api/v2/monitor/health"},
    "grafana": {"namespace": "monitoring", "service": "kube-prometheus-stack-grafana", "service_port": 80, "port": 3000,
                "health": "/api/health"},
}


def stack_plan(request, stack: str) -> Plan:
    return request.getfixturevalue(f"{stack}_plan")


def entry_config(stack: str, **changes) -> dict:
    return {"airflow-platform:entry": {**stack_config(stack)["airflow-platform:entry"], **changes}}


def one(plan: Plan, typ: str, name: str):
    [found] = [r for r in plan.of_type(typ) if r.name == name]
    return found


def entry_group(plan: Plan) -> str:
    return one(plan, "aws:ec2/securityGroup:SecurityGroup", f"airflow-{plan.stack}-entry-sg").id


def cluster_group(plan: Plan) -> str:
    return plan.named(f"airflow-{plan.stack}-cluster-eks").outputs["vpcConfig"]["clusterSecurityGroupId"]


def load_balancer(plan: Plan):
    [found] = plan.of_type(LOAD_BALANCER)
    return found


def listener(plan: Plan, port: int):
    [found] = [r for r in plan.of_type(LISTENER) if r.inputs["port"] == port]
    return found


def binding(plan: Plan, backend: str) -> dict:
    return one(plan, BINDING, f"airflow-{plan.stack}-entry-{backend}-binding").inputs


def test_no_entry_declares_no_load_balancer():
    """Without `entry` there is no load balancer, listener, certificate, record, target group or binding, and the URL
    outputs say how to get one."""
    plan = run_stack_config(without_sso("dev", entry=False), "dev")
    assert [r.name for r in plan.resources if r.type in ENTRY_TYPES or r.type == "airflow-platform:index:Entry"] == []
    assert [r.name for r in plan.of_type(INGRESS) if r.inputs.get("cidrIpv4")] == []
    assert (plan.outputs["airflowUrl"], plan.outputs["grafanaUrl"]) == ("not exposed: set entry", "not exposed: set entry")


@pytest.mark.parametrize("stack", STACKS)
def test_load_balancer_is_internal_in_the_entry_subnets(request, stack):
    """One internal IPv4 application load balancer, in every entry subnet (none of the pods'), behind the entry's security
    group only."""
    plan = stack_plan(request, stack)
    inputs = load_balancer(plan).inputs
    assert (inputs["loadBalancerType"], inputs["internal"], inputs["ipAddressType"]) == ("application", True, "ipv4")
    assert re.fullmatch(rf"airflow-{stack}-entry-[0-9a-f]{{8}}", inputs["name"])
    assert inputs["subnets"] == plan.outputs["entrySubnetIds"]
    assert not set(inputs["subnets"]) & set(plan.outputs["privateSubnetIds"])
    assert inputs["securityGroups"] == [entry_group(plan)]


@pytest.mark.parametrize("stack", STACKS)
def test_load_balancer_refuses_malformed_requests(request, stack):
    """Invalid header fields are dropped and ambiguous requests refused (strictest desync mitigation); X-Forwarded-For is
    appended to."""
    inputs = load_balancer(stack_plan(request, stack)).inputs
    assert (inputs["dropInvalidHeaderFields"], inputs["desyncMitigationMode"], inputs["xffHeaderProcessingMode"]) == (True, "strictest", "append")


@pytest.mark.parametrize("stack, protected", [("dev", False), ("prod", True)], ids=STACKS)
def test_deletion_protection_in_production_only(request, stack, protected):
    """AWS refuses to delete production's load balancer; dev's stays disposable (and neither is a Pulumi-protected resource)."""
    lb = load_balancer(stack_plan(request, stack))
    assert (lb.inputs["enableDeletionProtection"], lb.protect) == (protected, False)


@pytest.mark.parametrize("stack", STACKS)
def test_clients_reach_only_443_and_80_from_their_ranges(request, stack):
    """The entry's group admits exactly the stack's client ranges, each on 443 and 80 over TCP, and nothing else; no rule
    anywhere admits the whole internet."""
    plan = stack_plan(request, stack)
    group = entry_group(plan)
    rules = [r.inputs for r in plan.of_type(INGRESS) if r.inputs["securityGroupId"] == group]
    assert sorted((r["cidrIpv4"], r["ipProtocol"], r["fromPort"], r["toPort"]) for r in rules) == sorted(
        (cidr, "tcp", port, port) for cidr in CLIENTS[stack] for port in (443, 80))
    assert [r.name for r in plan.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"] == []


@pytest.mark.parametrize("stack", STACKS)
def test_load_balancer_reaches_only_the_two_pod_ports(request, stack):
    """The entry's group has no inline rules and sends only to the cluster's group, on the API server's and Grafana's
    container ports."""
    plan = stack_plan(request, stack)
    group = one(plan, "aws:ec2/securityGroup:SecurityGroup", f"airflow-{stack}-entry-sg")
    assert ("ingress" not in group.inputs, "egress" not in group.inputs) == (True, True)
    rules = [r.inputs for r in plan.of_type(EGRESS) if r.inputs["securityGroupId"] == group.id]
    assert sorted((r["referencedSecurityGroupId"], r["ipProtocol"], r["fromPort"], r["toPort"]) for r in rules) == [
        (cluster_group(plan), "tcp", 3000, 3000), (cluster_group(plan), "tcp", 8080, 8080)]
    assert [r for r in rules if "cidrIpv4" in r] == []


@pytest.mark.parametrize("stack", STACKS)
def test_cluster_group_admits_the_load_balancer_on_the_two_ports(request, stack):
    """The cluster's security group, the one every node and so every pod carries (EKS puts it on the managed nodes,
    Karpenter's node classes select it by its discovery tag), admits the entry's group on exactly the two container ports."""
    plan = stack_plan(request, stack)
    rules = [r.inputs for r in plan.of_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == entry_group(plan)]
    assert sorted((r["securityGroupId"], r["ipProtocol"], r["fromPort"], r["toPort"]) for r in rules) == [
        (cluster_group(plan), "tcp", 3000, 3000), (cluster_group(plan), "tcp", 8080, 8080)]
    tagged = [t.inputs for t in plan.of_type("aws:ec2/tag:Tag") if t.inputs["resourceId"] == cluster_group(plan)]
    assert tagged == [{"resourceId": cluster_group(plan), "key": "karpenter.sh/discovery", "value": f"airflow-{stack}"}]


@pytest.mark.parametrize("stack", STACKS)
def test_https_listener_uses_the_tls_policy_and_the_validated_certificate(request, stack):
    """Port 443 speaks TLS 1.3 (1.2 for older clients) with the certificate requested for both names, once it is validated
    through one DNS record per name in the stack's zone; any other host gets a 404."""
    plan = stack_plan(request, stack)
    [certificate] = plan.of_type(CERTIFICATE)
    domain = DOMAINS[stack]
    assert (certificate.inputs["domainName"], certificate.inputs["subjectAlternativeNames"], certificate.inputs["validationMethod"]) == (
        f"airflow.{domain}", [f"grafana.{domain}"], "DNS")
    options = {o["domainName"]: o for o in certificate.outputs["domainValidationOptions"]}
    records = {label: one(plan, RECORD, f"airflow-{stack}-entry-{label}-validation").inputs for label in BACKENDS}
    assert {label: (r["zoneId"], r["name"], r["type"], r["records"]) for label, r in records.items()} == {
        label: (ZONES[stack], options[f"{label}.{domain}"]["resourceRecordName"], "CNAME",
                [options[f"{label}.{domain}"]["resourceRecordValue"]]) for label in BACKENDS}
    [validation] = plan.of_type(VALIDATION)
    assert validation.inputs == {"certificateArn": certificate.outputs["arn"],
                                 "validationRecordFqdns": [r["name"].rstrip(".") for r in records.values()]}
    https = listener(plan, 443)
    assert (https.inputs["protocol"], https.inputs["sslPolicy"], https.inputs["certificateArn"]) == ("HTTPS", TLS_POLICY, certificate.outputs["arn"])
    # The ARN comes from the validation, so the listener is created only once the certificate is issued.
    assert https.property_dependencies["certificateArn"] == [validation.urn]
    assert https.inputs["defaultActions"] == [
        {"type": "fixed-response", "fixedResponse": {"contentType": "text/plain", "messageBody": "Not found", "statusCode": "404"}}]


def test_existing_certificate_is_used_as_it_is(plan_with):
    """With certificateArn set, the listener serves that certificate, and nothing is requested or validated."""
    plan = plan_with("dev", entry_config("dev", certificateArn=EXISTING_CERTIFICATE))
    assert listener(plan, 443).inputs["certificateArn"] == EXISTING_CERTIFICATE
    assert (plan.of_type(CERTIFICATE), plan.of_type(VALIDATION)) == ([], [])
    assert sorted(r.inputs["name"] for r in plan.of_type(RECORD)) == ["airflow.dev.data.example.com", "grafana.dev.data.example.com"]


@pytest.mark.parametrize("stack", STACKS)
def test_https_responses_carry_the_security_headers(request, stack):
    """The load balancer adds HSTS and nosniff to every HTTPS response and does not name itself."""
    inputs = listener(stack_plan(request, stack), 443).inputs
    assert (inputs["routingHttpResponseStrictTransportSecurityHeaderValue"], inputs["routingHttpResponseXContentTypeOptionsHeaderValue"],
            inputs["routingHttpResponseServerEnabled"]) == ("max-age=31536000", "nosniff", False)


@pytest.mark.parametrize("stack", STACKS)
def test_http_listener_only_redirects(request, stack):
    """Port 80 answers every request with a permanent redirect to HTTPS on 443, and has no rule that could forward."""
    plan = stack_plan(request, stack)
    http = listener(plan, 80)
    assert (http.inputs["protocol"], http.inputs["defaultActions"]) == (
        "HTTP", [{"type": "redirect", "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}}])
    assert [r.name for r in plan.of_type(RULE) if r.inputs["listenerArn"] == http.outputs["arn"]] == []
    assert sorted(r.inputs["port"] for r in plan.of_type(LISTENER)) == [80, 443]


@pytest.mark.parametrize("stack", STACKS)
def test_host_rules_forward_each_name_to_its_target_group(request, stack):
    """On the HTTPS listener, airflow.<domain> goes to the API server's target group and grafana.<domain> to Grafana's."""
    plan = stack_plan(request, stack)
    https = listener(plan, 443)
    rules = [r.inputs for r in plan.of_type(RULE)]
    assert {r["listenerArn"] for r in rules} == {https.outputs["arn"]}
    assert {(r["priority"], tuple(r["conditions"][0]["hostHeader"]["values"]), len(r["conditions"])): r["actions"] for r in rules} == {
        (priority, (f"{label}.{DOMAINS[stack]}",), 1): [
            {"type": "forward", "targetGroupArn": one(plan, TARGET_GROUP, f"airflow-{stack}-entry-{label}").outputs["arn"]}]
        for priority, label in ((10, "airflow"), (20, "grafana"))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_target_groups_send_to_the_pods(prod_plan, backend):
    """Each target group takes pod IPs on the container port, over HTTP in the VPC, checks the health endpoint the chart's
    probes use, and drains a leaving pod for 30 seconds."""
    expected = BACKENDS[backend]
    inputs = one(prod_plan, TARGET_GROUP, f"airflow-prod-entry-{backend}").inputs
    assert re.fullmatch(rf"airflow-prod-{backend}-[0-9a-f]{{8}}", inputs["name"])
    assert (inputs["targetType"], inputs["protocol"], inputs["protocolVersion"], inputs["port"], inputs["vpcId"], inputs["ipAddressType"]) == (
        "ip", "HTTP", "HTTP1", expected["port"], prod_plan.outputs["vpcId"], "ipv4")
    assert inputs["healthCheck"] == {"enabled": True, "protocol": "HTTP", "port": "traffic-port", "path": expected["health"], "matcher": "200",
                                     "interval": 15, "timeout": 5, "healthyThreshold": 2, "unhealthyThreshold": 3}
    assert inputs["deregistrationDelay"] == 30


@pytest.mark.parametrize("backend", BACKENDS)
def test_binding_ties_the_service_to_its_target_group(prod_plan, backend):
    """Each TargetGroupBinding, in its Service's namespace, names the Service and port and the target group, with target type
    ip and no networking section; it is created through the cluster's provider after the controller and the Service's
    release, and replaced (never changed) when its target group is."""
    expected = BACKENDS[backend]
    resource = one(prod_plan, BINDING, f"airflow-prod-entry-{backend}-binding")
    assert resource.inputs == {
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding",
        "metadata": {"name": expected["service"], "namespace": expected["namespace"]},
        "spec": {"serviceRef": {"name": expected["service"], "port": expected["service_port"]}, "targetType": "ip",
                 "targetGroupARN": one(prod_plan, TARGET_GROUP, f"airflow-prod-entry-{backend}").outputs["arn"]}}
    assert resource.provider.rsplit("::", 1)[0] == prod_plan.named("airflow-prod-cluster-k8s").urn
    assert {prod_plan.named(n).urn for n in ("airflow-prod-lb-controller-release", "airflow-prod-airflow-release",
                                             "airflow-prod-observability-kube-prometheus-stack")} <= set(resource.dependencies)


@pytest.fixture(scope="module")
def binding_schemas(rendering) -> Schemas:
    """The schemas of the TargetGroupBinding CRD the controller's chart ships (crds/), as the API server applies them."""
    result = rendering("prod")
    crds = [o for o in result.releases["aws-load-balancer-controller"].objects if (o["apiVersion"], o["kind"]) == CRD_KIND]
    return Schemas(result.cfg.cluster.kubernetes_version, crds)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bindings_satisfy_the_controllers_crd(rendering, binding_schemas, backend):
    """Each binding is valid against elbv2.k8s.aws/v1beta1's schema, unknown fields refused."""
    [obj] = [o for o in rendering("prod").declared("TargetGroupBinding") if o["metadata"]["name"] == BACKENDS[backend]["service"]]
    assert binding_schemas.errors(obj) == []


def _unknown_target_type(obj: dict) -> None:
    obj["spec"]["targetType"] = "pod"


def _no_service(obj: dict) -> None:
    del obj["spec"]["serviceRef"]


def _misspelt_field(obj: dict) -> None:
    obj["spec"]["targetGroupArn"] = obj["spec"].pop("targetGroupARN")


@pytest.mark.parametrize("breaks, message", [
    (_unknown_target_type, "spec.targetType: 'pod' is not one of ['instance', 'ip']"),
    (_no_service, "spec: 'serviceRef' is a required property"),
    (_misspelt_field, "spec: Additional properties are not allowed ('targetGroupArn' was unexpected)"),
], ids=["unknown-target-type", "no-service", "misspelt-field"])
def test_the_crd_refuses_a_broken_binding(rendering, binding_schemas, breaks, message):
    """The check bites: a binding the API server would refuse is refused here too."""
    obj = copy.deepcopy(rendering("prod").declared("TargetGroupBinding")[0])
    breaks(obj)
    assert any(message in error for error in binding_schemas.errors(obj)), binding_schemas.errors(obj)


# Where each Service is rendered: the release, and the workload whose pods it selects and their container.
RENDERED = {"airflow": ("airflow", "Deployment", "airflow-api-server", "api-server")}


# ../shared holds kube-prometheus-stack without its grafana subchart (SOURCES.md lists it, the folder is absent), so no
# Grafana Service renders here: the Grafana binding was checked once against grafana 12.11.1 (tree 5324b79d…, the one
# SOURCES.md names): Service kube-prometheus-stack-grafana, port 80 -> container port 3000, readiness /api/health.
@pytest.mark.parametrize("backend", ["airflow"])
def test_bindings_and_target_groups_match_what_the_charts_render(rendering, backend):
    """The bound Service is one the chart renders, in that namespace, with the bound port, selecting the UI's pods; that
    port leads to the container port the target group sends to; and the target group's health check is the path of the
    container's own readiness probe."""
    result = rendering("prod")
    release_name, kind, workload_name, container_name = RENDERED[backend]
    release = result.releases[release_name]
    spec = binding(result.plan, backend)
    service = release.named("Service", spec["spec"]["serviceRef"]["name"])
    assert service["metadata"].get("namespace", release.namespace) == spec["metadata"]["namespace"]
    [port] = [p for p in service["spec"]["ports"] if p["port"] == spec["spec"]["serviceRef"]["port"]]
    main = container(release.named(kind, workload_name), container_name)
    target = port.get("targetPort", port["port"])
    [container_port] = [p for p in main["ports"] if target in (p["containerPort"], p.get("name"))]
    group = one(result.plan, TARGET_GROUP, f"airflow-prod-entry-{backend}").inputs
    assert container_port["containerPort"] == group["port"] == BACKENDS[backend]["port"]
    assert main["readinessProbe"]["httpGet"]["path"] == group["healthCheck"]["path"]
    labels = pod(release.named(kind, workload_name))["metadata"]["labels"]
    assert service["spec"]["selector"] and all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


@pytest.mark.parametrize("stack", STACKS)
def test_alias_records_name_the_load_balancer(request, stack):
    """airflow.<domain> and grafana.<domain> are A aliases of the load balancer in the stack's zone, following its health."""
    plan = stack_plan(request, stack)
    lb = load_balancer(plan)
    records = [r.inputs for r in plan.of_type(RECORD) if r.inputs["type"] == "A"]
    assert {r["name"]: (r["zoneId"], r["aliases"]) for r in records} == {
        f"{label}.{DOMAINS[stack]}": (ZONES[stack], [{"name": lb.outputs["dnsName"], "zoneId": lb.outputs["zoneId"], "evaluateTargetHealth": True}])
        for label in BACKENDS}
    assert [r for r in records if "records" in r or "ttl" in r] == []


def test_internet_facing_entry_takes_the_public_subnets(plan_with):
    """internetFacing: a public load balancer in the new VPC's public subnets, still admitting only the client ranges."""
    plan = plan_with("dev", entry_config("dev", internetFacing=True))
    inputs = load_balancer(plan).inputs
    public = [s.id for s in plan.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("airflow-dev-network-public-")]
    assert (inputs["internal"], inputs["subnets"]) == (False, public)
    assert len(public) == 2 and not set(public) & set(plan.outputs["privateSubnetIds"])
    assert load_balancer(plan).outputs["dnsName"].startswith("airflow-dev-")
    rules = [r.inputs for r in plan.of_type(INGRESS) if r.inputs["securityGroupId"] == entry_group(plan)]
    assert sorted((r["cidrIpv4"], r["fromPort"]) for r in rules) == [("10.8.0.0/16", 80), ("10.8.0.0/16", 443)]


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_are_the_two_urls(request, stack):
    """The stack outputs the HTTPS address of each UI."""
    outputs = stack_plan(request, stack).outputs
    assert (outputs["airflowUrl"], outputs["grafanaUrl"]) == (f"https://airflow.{DOMAINS[stack]}", f"https://grafana.{DOMAINS[stack]}")


def test_names_fit_aws_limits_for_the_longest_environment(plan_with):
    """With the longest environment name allowed, the load balancer's and target groups' names stay within 32 characters
    of letters, digits and inner hyphens, and still say what each is."""
    plan = plan_with("prod", {"airflow-platform:environment": "e" * 20, "airflow-platform:production": True})
    names = [r.inputs["name"] for r in plan.of_type(LOAD_BALANCER) + plan.of_type(TARGET_GROUP)]
    assert sorted(re.sub(r"-[0-9a-f]{8}$", "", n) for n in names) == [
        "airflow-eeeeeee-airflow", "airflow-eeeeeee-grafana", "airflow-eeeeeeeee-entry"]
    assert [n for n in names if len(n) > NAME_LIMIT or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", n)
            or n.startswith("internal-")] == []


def test_a_setting_aws_cannot_change_in_place_renames_the_resource(plan_with, dev_plan):
    """Turning the scheme around (which replaces a load balancer) gives it a new name, so Pulumi can create the new one
    before it deletes the old; a change AWS makes in place (here another client range) keeps every name."""
    facing = plan_with("dev", entry_config("dev", internetFacing=True))
    assert load_balancer(facing).inputs["name"] != load_balancer(dev_plan).inputs["name"]
    assert physical_name("airflow-dev", "airflow", ("port", 8080)) != physical_name("airflow-dev", "airflow", ("port", 8081))
    widened = plan_with("dev", entry_config("dev", clientCidrs=["10.8.0.0/16", "10.9.0.0/16"]))
    names = [sorted(r.inputs["name"] for r in plan.of_type(LOAD_BALANCER) + plan.of_type(TARGET_GROUP)) for plan in (widened, dev_plan)]
    assert names[0] == names[1]


@pytest.mark.parametrize("namespace", ["airflow", "monitoring"])
def test_bound_namespaces_get_readiness_gates(dev_plan, namespace):
    """The namespaces of the bound Services carry the controller's readiness-gate label with the entry, and not without it."""
    def labels(plan):
        [ns] = [r for r in plan.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == namespace]
        return ns.inputs["metadata"]["labels"].get("elbv2.k8s.aws/pod-readiness-gate-inject")

    assert (labels(dev_plan), labels(run_stack_config(without_sso("dev", entry=False), "dev"))) == ("enabled", None)
