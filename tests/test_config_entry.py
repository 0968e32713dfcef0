"""Tests the entry, sso, ssoClientSecret and teams[].ssoGroups keys: what they accept, and the sentence each mistake gets."""

from __future__ import annotations

import pytest

from components.config import decode_stack_config, parse
from tests.test_config import ENTRY as E, MINIMAL, PROD_READY, SSO as S, TEAM, refusal

WITH = {**MINIMAL, "entry": E, "sso": S, "ssoClientSecret": "example-client-secret"}
EXISTING_VPC = {"existingVpcId": "vpc-0123456789abcdef0",
                "existingPrivateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"]}


class TestAccepted:
    """Tests what a stack gets from the keys."""

    def test_no_entry_and_no_sso_by_default(self):
        """Outside production a stack may have neither: no load balancer, only the break-glass logins."""
        cfg = parse(MINIMAL)
        assert (cfg.entry, cfg.sso, cfg.sso_client_secret) == (None, None, None)

    def test_entry_names_and_defaults(self):
        """Both UIs get a name in the entry's domain; the load balancer is internal and the certificate requested unless given."""
        entry = parse({**MINIMAL, "entry": E}).entry
        assert (entry.airflow_host, entry.grafana_host) == ("airflow.data.example.com", "grafana.data.example.com")
        assert (entry.internet_facing, entry.certificate_arn) == (False, None)

    def test_sso_defaults(self):
        """The default scopes ask for the groups claim beside the required ones; teams have no groups until mapped."""
        cfg = parse({**WITH, "teams": [TEAM]})
        assert (cfg.sso.scopes, cfg.sso.session_hours) == (["openid", "email", "profile", "groups"], 8)
        assert cfg.teams[0].sso_groups == []
        assert cfg.sso_client_secret.get_secret_value() == "example-client-secret"

    @pytest.mark.parametrize("change", [
        {"entry": {**E, "internetFacing": True}},
        {"entry": {**E, "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"}},
        {"entry": {**E, "clientCidrs": ["10.0.0.0/8", "203.0.113.0/24", "192.168.1.7/32"]}},
        {"network": EXISTING_VPC, "entry": E},
    ], ids=["internet-facing-in-a-new-vpc", "certificate-in-the-region", "widest-and-single-host", "internal-in-an-existing-vpc"])
    def test_entry_accepted(self, change):
        """Entries a platform engineer may declare."""
        parse({**MINIMAL, **change})

    def test_client_secret_must_be_a_stack_secret(self):
        """A client secret written in clear in the stack file is refused before anything is read."""
        with pytest.raises(Exception) as caught:
            decode_stack_config({"airflow-platform:ssoClientSecret": "in-clear"}, secret_keys=[])
        assert str(caught.value) == ("Config key 'airflow-platform:ssoClientSecret' must be a secret: set it with pulumi config set --secret "
                                     "airflow-platform:ssoClientSecret <value>.")


REFUSALS = [
    ('zone-id', {**MINIMAL, "entry": {**E, "hostedZoneId": "zone-1"}},
     'Config key \'airflow-platform:entry.hostedZoneId\' must be a Route 53 hosted zone id, like Z0123456789ABCDEFGHIJ (got "zone-1").'),
    ('domain-one-label', {**MINIMAL, "entry": {**E, "domain": "localhost"}},
     'Config key \'airflow-platform:entry.domain\' must be a lower-case DNS domain of at least two labels, like data.example.com (got "localhost").'),
    ('domain-upper', {**MINIMAL, "entry": {**E, "domain": "Data.Example.com"}},
     'Config key \'airflow-platform:entry.domain\' must be a lower-case DNS domain of at least two labels, like data.example.com (got "Data.Example.com").'),
    ('cert-arn', {**MINIMAL, "entry": {**E, "certificateArn": "arn:aws:iam::123456789012:server-certificate/x"}},
     'Config key \'airflow-platform:entry.certificateArn\' must be an ACM certificate ARN, like arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f (got "arn:aws:iam::123456789012:server-certificate/x").'),
    ('cert-region', {**MINIMAL, "entry": {**E, "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"}},
     'Config key \'airflow-platform:entry.certificateArn\' must be a certificate in the stack\'s region (eu-west-1): a load balancer uses only certificates of its own region (got "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f").'),
    ('no-cidrs', {**MINIMAL, "entry": {**E, "clientCidrs": []}},
     "Config key 'airflow-platform:entry.clientCidrs' must have at least 1 item(s) (got [])."),
    ('world', {**MINIMAL, "entry": {**E, "clientCidrs": ["0.0.0.0/0"]}},
     'Config key \'airflow-platform:entry.clientCidrs[0]\' must be a client range of /8 or narrower (a VPN, an office, a peered network), never 0.0.0.0/0 or a large part of the internet (got "0.0.0.0/0").'),
    ('wide', {**MINIMAL, "entry": {**E, "clientCidrs": ["10.0.0.0/7"]}},
     'Config key \'airflow-platform:entry.clientCidrs[0]\' must be a client range of /8 or narrower (a VPN, an office, a peered network), never 0.0.0.0/0 or a large part of the internet (got "10.0.0.0/7").'),
    ('host-bits', {**MINIMAL, "entry": {**E, "clientCidrs": ["10.8.0.1/16"]}},
     'Config key \'airflow-platform:entry.clientCidrs[0]\' must be an IPv4 CIDR block with no host bits set, like 10.20.0.0/16 (got "10.8.0.1/16").'),
    ('dup', {**MINIMAL, "entry": {**E, "clientCidrs": ["10.8.0.0/16", "10.8.0.0/16"]}},
     "Config key 'airflow-platform:entry.clientCidrs' must not list a range twice (got ['10.8.0.0/16', '10.8.0.0/16'])."),
    ('internet-existing-vpc', {**MINIMAL, "network": {"existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": ["subnet-0123456789abcdef0","subnet-0123456789abcdef1","subnet-0123456789abcdef2"]}, "entry": {**E, "internetFacing": True}},
     "Config key 'airflow-platform:entry.internetFacing' must be false with network.existingVpcId: the program knows only the private subnets of an existing VPC."),
    ('internet-string', {**MINIMAL, "entry": {**E, "internetFacing": "yes"}},
     'Config key \'airflow-platform:entry.internetFacing\' must be true or false (got "yes").'),
    ('entry-missing-zone', {**MINIMAL, "entry": {"domain": "data.example.com", "clientCidrs": ["10.8.0.0/16"]}},
     "Config key 'airflow-platform:entry.hostedZoneId' is required."),
    ('sso-without-entry', {**MINIMAL, "sso": S, "ssoClientSecret": "x"},
     "Config key 'airflow-platform:sso' needs entry: the provider sends users back to https://airflow.<entry.domain>, which only the entry serves."),
    ('sso-without-secret', {**MINIMAL, "entry": E, "sso": S},
     "Config key 'airflow-platform:ssoClientSecret' must be set while sso is set: pulumi config set --secret airflow-platform:ssoClientSecret <secret>."),
    ('secret-without-sso', {**MINIMAL, "ssoClientSecret": "abc"},
     "Config key 'airflow-platform:ssoClientSecret' must be unset while sso is unset: nothing would use it."),
    ('secret-with-space', {**WITH, "ssoClientSecret": "a b"},
     "Config key 'airflow-platform:ssoClientSecret' must be 1 to 512 printable characters without spaces."),
    ('issuer-http', {**WITH, "sso": {**S, "issuer": "http://login.example.com"}},
     'Config key \'airflow-platform:sso.issuer\' must be the provider\'s https:// issuer URL without a trailing /, like https://login.example.com/realms/data (got "http://login.example.com").'),
    ('issuer-slash', {**WITH, "sso": {**S, "issuer": "https://login.example.com/"}},
     'Config key \'airflow-platform:sso.issuer\' must be the provider\'s https:// issuer URL without a trailing /, like https://login.example.com/realms/data (got "https://login.example.com/").'),
    ('client-id-space', {**WITH, "sso": {**S, "clientId": "my client"}},
     'Config key \'airflow-platform:sso.clientId\' must be an OIDC client id of 1 to 255 letters, digits or any of . : @ / - _ (got "my client").'),
    ('token-url-query', {**WITH, "sso": {**S, "tokenUrl": "https://login.example.com/token?x=1"}},
     'Config key \'airflow-platform:sso.tokenUrl\' must be an https:// URL without a query or fragment, like https://login.example.com/oauth2/v1/token (got "https://login.example.com/token?x=1").'),
    ('scopes-no-openid', {**WITH, "sso": {**S, "scopes": ["email", "profile", "groups"]}},
     "Config key 'airflow-platform:sso.scopes' must include openid, email, profile (the user's name and e-mail come from them) (got ['email', 'profile', 'groups'])."),
    ('scope-quote', {**WITH, "sso": {**S, "scopes": ["openid", "email", "profile", "gr\"oups"]}},
     'Config key \'airflow-platform:sso.scopes[3]\' must be an OAuth scope (printable, no spaces, quotes or backslashes) (got "gr\\"oups").'),
    ('no-admin-groups', {**WITH, "sso": {**S, "adminGroups": []}},
     "Config key 'airflow-platform:sso.adminGroups' must have at least 1 item(s) (got [])."),
    ('admin-group-quote', {**WITH, "sso": {**S, "adminGroups": ["o'neil"]}},
     'Config key \'airflow-platform:sso.adminGroups[0]\' must be an identity-provider group name of 1 to 256 characters, without quotes, backslashes or leading or trailing spaces (got "o\'neil").'),
    ('team-group-space', {**WITH, "teams": [{**TEAM, "ssoGroups": [" analytics"]}]},
     'Config key \'airflow-platform:teams[0].ssoGroups[0]\' must be an identity-provider group name of 1 to 256 characters, without quotes, backslashes or leading or trailing spaces (got " analytics").'),
    ('team-groups-without-sso', {**MINIMAL, "teams": [{**TEAM, "ssoGroups": ["analytics"]}]},
     "Config key 'airflow-platform:teams[0].ssoGroups' may only be set together with sso: without it nobody logs in through the provider (got ['analytics'])."),
    ('sso-missing-userinfo', {**WITH, "sso": {k: v for k, v in S.items() if k != "userinfoUrl"}},
     "Config key 'airflow-platform:sso.userinfoUrl' is required."),
    ('session-longer-than-a-day', {**WITH, "sso": {**S, "sessionHours": 48}},
     "Config key 'airflow-platform:sso.sessionHours' must be an integer from 1 to 24 (got 48)."),
    ('session-zero', {**WITH, "sso": {**S, "sessionHours": 0}},
     "Config key 'airflow-platform:sso.sessionHours' must be an integer from 1 to 24 (got 0)."),
    ('authorization-url-plain-http', {**WITH, "sso": {**S, "authorizationUrl": "http://login.example.com/authorize"}},
     "Config key 'airflow-platform:sso.authorizationUrl' must be an https:// URL without a query or fragment, like "
     "https://login.example.com/oauth2/v1/token (got \"http://login.example.com/authorize\")."),
    ('userinfo-url-with-fragment', {**WITH, "sso": {**S, "userinfoUrl": "https://login.example.com/userinfo#me"}},
     "Config key 'airflow-platform:sso.userinfoUrl' must be an https:// URL without a query or fragment, like "
     "https://login.example.com/oauth2/v1/token (got \"https://login.example.com/userinfo#me\")."),
    ('too-many-client-ranges', {**MINIMAL, "entry": {**E, "clientCidrs": [f"10.{i}.0.0/16" for i in range(31)]}},
     "Config key 'airflow-platform:entry.clientCidrs' must have at most 30 item(s) (got "
     + repr([f"10.{i}.0.0/16" for i in range(31)]) + ")."),
]


class TestRefusals:
    """Tests that each mistake stops the run with one sentence naming the key."""

    @pytest.mark.parametrize("raw, sentence", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
    def test_refused_with_sentence(self, raw, sentence):
        """The exact sentence for each mistake."""
        assert refusal(raw) == sentence


class TestProduction:
    """Tests that production stacks must have a way in and single sign-on."""

    @pytest.mark.parametrize("removed, sentence", [
        (("entry", "sso", "ssoClientSecret"),
         "Config key 'airflow-platform:entry' must be set in production: without it no team can reach the Airflow UI or Grafana."),
        (("sso", "ssoClientSecret"),
         "Config key 'airflow-platform:sso' must be set in production: team members log in through the identity provider, not with shared passwords."),
    ], ids=["without-entry", "without-sso"])
    def test_production_refusal(self, removed, sentence):
        """Production refuses a stack without them."""
        assert refusal({k: v for k, v in PROD_READY.items() if k not in removed}) == sentence

    @pytest.mark.parametrize("removed", [("entry", "sso", "ssoClientSecret"), ("sso", "ssoClientSecret")], ids=["without-entry", "without-sso"])
    def test_allowed_outside_production(self, removed):
        """The same stack is accepted outside production."""
        parse({k: v for k, v in {**PROD_READY, "environment": "staging"}.items() if k not in removed})
