"""Tests the policies of the private entry and single sign-on on compliant and violating inputs, asserting the exact
messages: internal load balancers (and internal ones the controller would make), HTTPS listeners with a TLS 1.3
policy, no security group open to the internet in front of a load balancer, and no OIDC client secret in Helm values or
a ConfigMap; with what each passes over, and how their properties are configured."""

from __future__ import annotations

from typing import Any

import pytest

from components import sso
from components.config.entry import EntryConfig
from components.config.sso import SsoConfig
from policies.airflow_guard.catalog import BY_NAME
from policies.airflow_guard.engine import PolicyConfigError, evaluate, settings
from policies.airflow_guard.entry import APPROVED_SSL_POLICIES
from policies.airflow_guard.model import UNKNOWN, Resource
from policies.airflow_guard.sso import text_findings
from tests.test_policy_karpenter import present
from tests.test_policy_rules import RELEASE, messages, res

LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
INGRESS_SCHEME = "alb.ingress.kubernetes.io/scheme"
TLS13 = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/airflow/0123456789abcdef"
REDIRECT = {"type": "redirect", "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}}
FORWARD = {"type": "forward", "targetGroupArn": TARGET_GROUP}
NOT_FOUND = {"type": "fixed-response", "fixedResponse": {"contentType": "text/plain", "statusCode": "404"}}
NOT_DECLARED = "the load balancer the controller creates for it is not declared internal"
SSO = SsoConfig(issuer="https://login.example.com/realms/data", client_id="airflow-platform-prod",
                authorization_url="https://login.example.com/realms/data/protocol/openid-connect/auth",
                token_url="https://login.example.com/realms/data/protocol/openid-connect/token",
                userinfo_url="https://login.example.com/realms/data/protocol/openid-connect/userinfo", admin_groups=["data-platform-admins"])
ENTRY = EntryConfig(hosted_zone_id="Z0PROD000000000EXAMPLE", domain="data.example.com", client_cidrs=["10.8.0.0/16"])


def load_balancer(name: str = "entry", type_: str = LB, deps: dict[str, list[Resource]] | None = None, **props: Any) -> Resource:
    """The entry's ALB as components/entry.py declares it; `props` replace its props (None removes one)."""
    full = {"loadBalancerType": "application", "internal": True, "dropInvalidHeaderFields": True, "securityGroups": ["sg-1"], **props}
    return res(type_, name, present(full), deps)


def https_listener(name: str = "https", **props: Any) -> Resource:
    return res(LISTENER, name, present({"port": 443, "protocol": "HTTPS", "sslPolicy": TLS13, "certificateArn": CERTIFICATE,
                                        "defaultActions": [NOT_FOUND], **props}))


def http_listener(name: str = "http", actions: list[dict[str, Any]] | None = None, **props: Any) -> Resource:
    return res(LISTENER, name, present({"port": 80, "protocol": "HTTP", "defaultActions": actions or [REDIRECT], **props}))


def listener_rule(name: str, listener: Resource | None, *actions: dict[str, Any]) -> Resource:
    """A rule on `listener` (its listener_arn computed from it), or on a listener of another stack when None."""
    return res(RULE, name, {"listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/entry/0a1b/2c3d",
                            "priority": 10, "actions": list(actions), "conditions": [{"hostHeader": {"values": ["airflow.data.example.com"]}}]},
               {"listenerArn": [listener]} if listener else None)


def service(name: str, kind: str, annotations: dict[str, str]) -> Resource:
    return res(SERVICE, name, {"metadata": {"name": name, "annotations": annotations}, "spec": {"type": kind, "ports": [{"port": 443}]}})


def ingress(name: str, annotations: dict[str, str], class_name: str | None = "alb") -> Resource:
    spec = {"ingressClassName": class_name} if class_name else {}
    return res(INGRESS, name, {"metadata": {"name": name, "annotations": annotations}, "spec": {**spec, "rules": []}})


def release(name: str, chart: str, values: dict[str, Any]) -> Resource:
    return res(RELEASE, name, {"chart": chart, "version": "1.0.0", "namespace": "airflow", "values": values})


def config_map(name: str, data: dict[str, str]) -> Resource:
    return res(CONFIG_MAP, name, {"metadata": {"name": name, "namespace": "airflow"}, "data": data})


# policy -> (compliant resources, violating resources, the violating resources' messages)
CASES: dict[str, tuple[list[Resource], list[Resource], list[str]]] = {
    "lb-internal": (
        # A Gateway Load Balancer has no scheme; a Service that is no load balancer and an nginx Ingress are not the
        # controller's; an alb block of values that is switched off renders nothing.
        [load_balancer(), load_balancer("inspection", loadBalancerType="gateway", internal=None),
         service("ui", "LoadBalancer", {SERVICE_SCHEME: "internal"}), service("api", "ClusterIP", {}),
         ingress("ui", {INGRESS_SCHEME: "internal"}), ingress("legacy", {"kubernetes.io/ingress.class": "nginx"}, class_name=None),
         release("kps", "kube-prometheus-stack", {"grafana": {"service": {"type": "LoadBalancer", "annotations": {SERVICE_SCHEME: "internal"}},
                                                              "ingress": {"enabled": True, "ingressClassName": "alb",
                                                                          "annotations": {INGRESS_SCHEME: "internal"}}},
                                                  "prometheus": {"ingress": {"enabled": False, "ingressClassName": "alb"}}})],
        [load_balancer(internal=False), load_balancer("classic", "aws:elb/loadBalancer:LoadBalancer", internal=None, loadBalancerType=None),
         service("ui", "LoadBalancer", {}), service("public", "LoadBalancer", {SERVICE_SCHEME: "internet-facing"}),
         ingress("old", {"kubernetes.io/ingress.class": "alb"}, class_name=None), ingress("open", {INGRESS_SCHEME: "internet-facing"}),
         release("kps", "kube-prometheus-stack", {"grafana": {"service": {"type": "LoadBalancer"}}}),
         release("airflow", "airflow", {"ingress": {"apiServer": {"enabled": True, "ingressClassName": "alb", "annotations": {}}}})],
        ["load balancer entry is internet-facing (internal is false)",
         "load balancer classic is internet-facing: internal is unset, and AWS's default is internet-facing",
         f"Service ui (type LoadBalancer) has no {SERVICE_SCHEME} annotation: {NOT_DECLARED}",
         f"Service public (type LoadBalancer) asks the controller for a load balancer with {SERVICE_SCHEME}: internet-facing",
         f"Ingress old (class alb) has no {INGRESS_SCHEME} annotation: {NOT_DECLARED}",
         f"Ingress open (class alb) asks the controller for a load balancer with {INGRESS_SCHEME}: internet-facing",
         f"release kps: values.grafana.service (type LoadBalancer) has no {SERVICE_SCHEME} annotation: {NOT_DECLARED}",
         f"release airflow: values.ingress.apiServer (class alb) has no {INGRESS_SCHEME} annotation: {NOT_DECLARED}"]),
    "lb-listener-https-tls13": (
        # A rule forwarding from HTTPS, one redirecting on HTTP, and one on another stack's listener (not judged).
        [https_listener(), https_listener("strict", sslPolicy="ELBSecurityPolicy-TLS13-1-3-2021-06"), http_listener(),
         res(LISTENER, "nlb", {"port": 443, "protocol": "TLS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
                               "certificateArn": CERTIFICATE, "defaultActions": [FORWARD]}),
         listener_rule("to-airflow", https_listener(), FORWARD), listener_rule("to-https", http_listener(), REDIRECT),
         listener_rule("elsewhere", None, FORWARD)],
        [https_listener("old", sslPolicy="ELBSecurityPolicy-2016-08"), https_listener("bare", sslPolicy=None, certificateArn=None),
         http_listener("plain", [FORWARD, NOT_FOUND]), http_listener("loop", [{"type": "redirect", "redirect": {"statusCode": "HTTP_301"}}], protocol=None),
         http_listener("downgrade", [{"type": "redirect", "redirect": {"protocol": "HTTP", "port": "8080", "statusCode": "HTTP_302"}}]),
         res(LISTENER, "tcp", {"port": 5432, "protocol": "TCP", "defaultActions": [FORWARD]}),
         http_listener(), listener_rule("sneaky", http_listener(), FORWARD)],
        ["listener old serves HTTPS with TLS policy ELBSecurityPolicy-2016-08, not an approved TLS 1.3 policy",
         "listener bare serves HTTPS with TLS policy unset (ELBSecurityPolicy-2016-08), not an approved TLS 1.3 policy",
         "listener bare serves HTTPS without a certificate_arn",
         "listener plain answers plain HTTP with forward (default action 1), not a redirect to HTTPS",
         "listener plain answers plain HTTP with fixed-response (default action 2), not a redirect to HTTPS",
         "listener loop answers plain HTTP with a redirect that keeps HTTP (default action 1), not a redirect to HTTPS",
         "listener downgrade answers plain HTTP with a redirect to HTTP (default action 1), not a redirect to HTTPS",
         "listener tcp serves TCP, which is neither HTTPS nor TLS",
         "listener rule sneaky on HTTP listener http answers plain HTTP with forward (action 1), not a redirect to HTTPS"]),
    "sso-client-secret-not-in-values": (
        # What components/sso.py generates, Grafana's secret from the Secret, and references to an env var or a file.
        [release("airflow", "airflow", {"apiServer": {"apiServerConfig": sso.fab_config(SSO, [])}}),
         release("kps", "kube-prometheus-stack", {"grafana": {
             "grafana.ini": {**sso.grafana_ini(SSO, ENTRY), "auth.github": {"client_secret": "$__file{/etc/secrets/github/client_secret}"}},
             "envValueFrom": {sso.GRAFANA_CLIENT_SECRET_ENV: {"secretKeyRef": {"name": "sso", "key": "client-secret"}}},
             "env": {"GF_AUTH_GENERIC_OAUTH_CLIENT_ID": "airflow-platform-prod"}}}),
         config_map("webserver-config", {"webserver_config.py": "import os\nclient_secret = os.environ['S']\n",
                                         "grafana.ini": "[auth.generic_oauth]\nclient_secret = $__env{GF_SSO_SECRET}\n",
                                         "proxy.yaml": "client_secret_file: /etc/sso/client-secret\n"})],
        [release("airflow", "airflow", {
            "apiServer": {"apiServerConfig": 'OAUTH_PROVIDERS = [{"name": "oidc", "remote_app": {"client_id": "c", "client_secret": "hunter2"}}]\n'
                                             'CLIENT_SECRET = os.environ.get("SSO_SECRET", "hunter2")\n'},
            "webserver": {"webserverConfig": '{{- if .Values.sso }}\nclient_secret = "hunter2"\n{{- end }}\n'}}),
         release("kps", "kube-prometheus-stack", {"grafana": {
             "grafana.ini": {"auth.generic_oauth": {"enabled": True, "client_secret": "hunter2"}, "auth": {"github": {"client_secret": "hunter2"}}},
             "env": {sso.GRAFANA_CLIENT_SECRET_ENV: "hunter2"}}}),
         config_map("sso-config", {"webserver_config.py": "import os\n\nclient_secret = 'hunter2'\n",
                                   "grafana.ini": "[auth.generic_oauth]\nclient_secret = hunter2\n"})],
        ["release airflow: values.apiServer.apiServerConfig line 1 gives client_secret a literal",
         "release airflow: values.apiServer.apiServerConfig line 2 gives CLIENT_SECRET a literal fallback",
         "release airflow: values.webserver.webserverConfig line 2 gives client_secret a literal",
         "release kps: values.grafana.grafana.ini [auth.generic_oauth] client_secret is a literal, not a $__env{...} or $__file{...} reference",
         "release kps: values.grafana.grafana.ini [auth.github] client_secret is a literal, not a $__env{...} or $__file{...} reference",
         f"release kps: values.grafana.env.{sso.GRAFANA_CLIENT_SECRET_ENV} is a literal, not envValueFrom or envFromSecret",
         "ConfigMap sso-config: data.webserver_config.py line 3 gives client_secret a literal",
         "ConfigMap sso-config: data.grafana.ini line 2 gives client_secret a literal"]),
}


NOT_APPLICABLE = {
    # Resources of the entry no policy of this module judges, and charts whose values ask for no load balancer.
    "lb-internal": [res("aws:lb/targetGroup:TargetGroup", "airflow", {"port": 8080, "protocol": "HTTP", "targetType": "ip"}),
                    res("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding", "airflow", {"spec": {"targetGroupARN": TARGET_GROUP}}),
                    release("keda", "keda", {"nodeSelector": {"airflow-platform/pool": "system"}}), release("crds", "karpenter-crd", {})],
    "lb-listener-https-tls13": [load_balancer(internal=False), res("aws:lb/listenerCertificate:ListenerCertificate", "extra",
                                                                   {"certificateArn": CERTIFICATE})],
    # A Secret is where the client secret belongs; other releases' values hold no client secret.
    "sso-client-secret-not-in-values": [res("kubernetes:core/v1:Secret", "sso", {"stringData": {"client-secret": "hunter2"}}),
                                        release("keda", "keda", {"env": {"KEDA_HTTP_DEFAULT_TIMEOUT": "3000"}})],
}


@pytest.mark.parametrize("policy", sorted(NOT_APPLICABLE))
def test_what_a_policy_does_not_judge(policy):
    """Resources outside a policy's concern raise nothing, whatever they hold."""
    assert messages(policy, NOT_APPLICABLE[policy]) == []


UNDECIDED = {
    "internal-unknown": ("lb-internal", load_balancer(internal=UNKNOWN)),
    "annotations-unknown": ("lb-internal", res(SERVICE, "ui", {"metadata": {"annotations": UNKNOWN}, "spec": {"type": "LoadBalancer"}})),
    "ssl-policy-unknown": ("lb-listener-https-tls13", https_listener(sslPolicy=UNKNOWN)),
    "values-unknown": ("sso-client-secret-not-in-values", res(RELEASE, "airflow", {"chart": "airflow", "values": UNKNOWN})),
    "config-unknown": ("sso-client-secret-not-in-values", release("airflow", "airflow", {"apiServer": {"apiServerConfig": UNKNOWN}})),
}


@pytest.mark.parametrize("policy, resource", UNDECIDED.values(), ids=UNDECIDED.keys())
def test_unknown_value_is_undecided(policy, resource):
    """A value the check needs that is unknown during preview skips the resource instead of passing or failing it."""
    assert messages(policy, [resource]) == []


def test_a_certificate_still_to_be_issued_is_a_certificate():
    """In a first preview the validated certificate's ARN is unknown: the listener is still judged, on its TLS policy."""
    assert messages("lb-listener-https-tls13", [https_listener(certificateArn=UNKNOWN, sslPolicy="ELBSecurityPolicy-TLS-1-2-2017-01")]) == [
        "listener https serves HTTPS with TLS policy ELBSecurityPolicy-TLS-1-2-2017-01, not an approved TLS 1.3 policy"]


class TestConfiguration:
    """Tests the properties of the entry's policies: allowInternetFacing and sslPolicies."""

    def test_internet_facing_is_refused_by_default(self):
        """Without a config, the switch is off."""
        assert settings({})["lb-internal"].properties == {"allowInternetFacing": False}

    def test_allowing_internet_facing_passes_only_the_stacks_own_load_balancer(self):
        """With allowInternetFacing the ALB may be public; a Service's load balancer, outside the stack, still may not."""
        found = evaluate([load_balancer(internal=False), service("ui", "LoadBalancer", {})],
                         {"lb-internal": {"allowInternetFacing": True}}, policies=[BY_NAME["lb-internal"]])
        assert [v.message for v in found] == [f"Service ui (type LoadBalancer) has no {SERVICE_SCHEME} annotation: {NOT_DECLARED}"]

    def test_the_switch_must_be_a_boolean(self):
        """A string is refused in one sentence, as the CLI would refuse it."""
        with pytest.raises(PolicyConfigError) as caught:
            settings({"lb-internal": {"allowInternetFacing": "yes"}})
        assert str(caught.value) == "lb-internal.allowInternetFacing: 'yes' is not of type 'boolean' (its properties: allowInternetFacing)."

    def test_approved_policies_default_to_the_tls13_list(self):
        """The default list is TLS 1.3 throughout, with the platform's policy in it and no Ext (CBC, SHA-1) policy."""
        approved = settings({})["lb-listener-https-tls13"].properties["sslPolicies"]
        assert approved == list(APPROVED_SSL_POLICIES) and TLS13 in approved
        assert all(p.startswith("ELBSecurityPolicy-TLS13-1-") and "-Ext" not in p for p in approved)

    def test_a_narrower_list_refuses_the_rest(self):
        """A stack that allows only TLS 1.3 flags the platform's default policy."""
        found = evaluate([https_listener()], {"lb-listener-https-tls13": {"sslPolicies": ["ELBSecurityPolicy-TLS13-1-3-2021-06"]}},
                         policies=[BY_NAME["lb-listener-https-tls13"]])
        assert [v.message for v in found] == [f"listener https serves HTTPS with TLS policy {TLS13}, not an approved TLS 1.3 policy"]


def alb_group(*rules: dict[str, Any]) -> list[Resource]:
    """The ALB's security group with rule resources on it, and the ALB that uses it."""
    group = res(GROUP, "alb-sg", {"description": "the entry's clients"})
    rule_resources = [res(INGRESS_RULE, name, {"ipProtocol": "tcp", "fromPort": port, "toPort": port, **props}, {"securityGroupId": [group]})
                      for name, port, props in rules]
    return [group, *rule_resources, load_balancer(deps={"securityGroups": [group]})]


OFFICES = res(PREFIX_LIST, "offices", {"addressFamily": "IPv4", "maxEntries": 5, "entries": [{"cidr": "10.8.0.0/16"}]})
EVERYONE = res(PREFIX_LIST, "everyone", {"addressFamily": "IPv4", "maxEntries": 5, "entries": [{"cidr": "10.8.0.0/16"}, {"cidr": "0.0.0.0/0"}]})
OPEN_INGRESS = {
    "client-range": (alb_group(("https", 443, {"cidrIpv4": "10.8.0.0/16"}), ("http", 80, {"cidrIpv4": "10.8.0.0/16"})), []),
    "world-on-the-alb": (alb_group(("https", 443, {"cidrIpv4": "0.0.0.0/0"})),
                         ["https admits tcp 443 from 0.0.0.0/0 (the security group of load balancer entry)"]),
    "ipv6-world-written-long": (alb_group(("https6", 443, {"cidrIpv6": "0:0:0:0:0:0:0:0/0"})),
                                ["https6 admits tcp 443 from 0:0:0:0:0:0:0:0/0 (the security group of load balancer entry)"]),
    "inline-world-on-the-alb": ([(group := res(GROUP, "alb-sg", {"ingress": [{"protocol": "tcp", "fromPort": 80, "toPort": 80, "ipv6CidrBlocks": ["::/0"]}]})),
                                 load_balancer(deps={"securityGroups": [group]})],
                                ["alb-sg admits tcp 80 from ::/0 (the security group of load balancer entry)"]),
    "prefix-list-of-offices": ([OFFICES, res(INGRESS_RULE, "from-offices", {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "prefixListId": "pl-1"},
                                             {"prefixListId": [OFFICES]})], []),
    "prefix-list-with-world": ([EVERYONE, res(INGRESS_RULE, "from-list", {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "prefixListId": "pl-2"},
                                              {"prefixListId": [EVERYONE]})],
                               ["from-list admits tcp 443 from 0.0.0.0/0 (prefix list everyone)"]),
    "prefix-list-entry-resource-with-world": (
        [OFFICES, res("aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry", "anyone", {"prefixListId": "pl-1", "cidr": "0.0.0.0/0"},
                      {"prefixListId": [OFFICES]}),
         res("aws:ec2/securityGroupRule:SecurityGroupRule", "legacy", {"type": "ingress", "protocol": "tcp", "fromPort": 443, "toPort": 443,
                                                                      "prefixListIds": ["pl-1"]}, {"prefixListIds": [OFFICES]})],
        ["legacy admits tcp 443 from 0.0.0.0/0 (prefix list offices)"]),
}


@pytest.mark.parametrize("resources, expected", OPEN_INGRESS.values(), ids=OPEN_INGRESS.keys())
def test_no_security_group_admits_the_internet(resources, expected):
    """security-group-no-public-ingress (network.py) covers the ALB's group: client ranges pass; 0.0.0.0/0 or ::/0 however
    written, inline or in a rule resource, directly or through a prefix list of the stack, is reported, naming the load
    balancer — and so even when lb-internal allows an internet-facing entry."""
    config = {"lb-internal": {"allowInternetFacing": True}}
    found = evaluate(resources, config, policies=[BY_NAME["security-group-no-public-ingress"], BY_NAME["lb-internal"]])
    assert [(v.policy.name, v.message) for v in found] == [("security-group-no-public-ingress", message) for message in expected]


TEXTS = {
    "assignment": ("client_secret = 'x'\n", True, ["line 1 gives client_secret a literal"]),
    "from-environment": ("OAUTH_PROVIDERS[0]['remote_app']['client_secret'] = os.environ['S']\n", True, []),
    "from-a-file": ("client_secret = open('/run/secrets/sso').read().strip()\n", True, []),
    "keyword": ("remote_app = dict(client_id='c', client_secret='x')\n", True, ["line 1 gives client_secret a literal"]),
    "annotated-f-string": ("CLIENT_SECRET: str = f'abc'\n", True, ["line 1 gives CLIENT_SECRET a literal"]),
    "concatenation": ("client_secret = 'ab' + 'cd'\n", True, ["line 1 gives client_secret a literal"]),
    "getenv-fallback": ("client_secret = os.getenv('S', 'default')\n", True, ["line 1 gives client_secret a literal fallback"]),
    "empty": ("client_secret = ''\n", True, []),
    "templated-literal": ("{{- if .Values.sso }}\nclient_secret = 'x'\n{{- end }}\n", True, ["line 2 gives client_secret a literal"]),
    "templated-environment": ("{{ .Values.header }}\nclient_secret = os.environ['S']\n", True, []),
    "ini-env-reference": ("[auth.generic_oauth]\nclient_secret = $__env{GF_SSO_SECRET}\n", False, []),
    "ini-literal": ("[auth.generic_oauth]\n\nclient_secret = abc\n", False, ["line 3 gives client_secret a literal"]),
    "yaml-camel-case": ("oidc:\n  clientSecret: abc\n", False, ["line 2 gives clientSecret a literal"]),
    "json": ('{\n  "client_secret": "abc",\n  "client_id": "c"\n}\n', False, ["line 2 gives client_secret a literal"]),
    "env-file": ("GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET=abc\n", False, ["line 1 gives GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET a literal"]),
    "path-to-a-file": ("client_secret_file: /etc/sso/client-secret\n", False, []),
    "yaml-null": ("client_secret: ~\n", False, []),
}


@pytest.mark.parametrize("text, python, expected", TEXTS.values(), ids=TEXTS.keys())
def test_client_secret_literals_in_text(text, python, expected):
    """A Python config is read as Python (a templated one line by line, where only a quoted string is a literal); other
    texts line by line, where any value but a reference, a file path key or an empty one is a literal."""
    assert text_findings(text, python) == expected


class TestOneReportPerSecret:
    """Tests how the SSO policy and helm-values-no-secret-literals share grafana.ini."""

    def test_grafana_oauth_secret_is_reported_by_the_sso_policy_only(self):
        """A literal auth.* client_secret is the SSO policy's; the generic policy leaves it to it."""
        kps = release("kps", "kube-prometheus-stack", {"grafana": {"grafana.ini": {"auth.generic_oauth": {"client_secret": "hunter2"}}}})
        found = evaluate([kps], {}, policies=[BY_NAME["helm-values-no-secret-literals"], BY_NAME["sso-client-secret-not-in-values"]])
        assert [v.policy.name for v in found] == ["sso-client-secret-not-in-values"]

    def test_grafana_references_are_no_literals_and_other_secrets_still_are(self):
        """$__env{...} and $__file{...} pass the generic policy; a literal secret_key beside them does not."""
        kps = release("kps", "kube-prometheus-stack", {"grafana": {"grafana.ini": {"security": {
            "secret_key": "$__env{GF_SECURITY_SECRET_KEY}", "admin_password": "$__file{/etc/secrets/admin}"}, "smtp": {"password": "hunter2"}}}})
        assert messages("helm-values-no-secret-literals", [kps]) == [
            "release kps: values.grafana.grafana.ini.smtp.password holds a literal password"]
