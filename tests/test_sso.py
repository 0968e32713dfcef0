"""Tests components/sso.py and where its settings enter the charts' values: the roles each identity-provider group maps
to, the FAB module as Python runs it, Grafana's role expression as JMESPath evaluates it, and what the Airflow and
kube-prometheus-stack values carry with and without the entry and sso keys. The rendered objects are asserted in
tests/test_rendered_sso.py; a login through a real Airflow is the end-to-end suite's."""

from __future__ import annotations

import sys
import types

import flask
import jmespath
import pytest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

from components import sso
from components.airflow_values import BEHIND_THE_ENTRY, SECRETS, airflow_values
from components.config import parse
from components.observability_values import kps_values
from tests.conftest import stack_config, typed_config
from tests.test_airflow_values import WIRING
from tests.test_config import ENTRY, MINIMAL, SSO

# Two teams sharing a group, which is also an admin group; each team has a group of its own.
TEAMS = [
    {"name": "analytics", "owner": "analytics@example.com", "repository": "example-org/analytics-dags",
     "ssoGroups": ["analysts", "data-engineers"]},
    {"name": "marketing", "owner": "marketing@example.com", "repository": "example-org/marketing-dags",
     "ssoGroups": ["marketing-analysts", "data-engineers"]},
]
CFG = parse({**MINIMAL, "entry": ENTRY, "sso": {**SSO, "adminGroups": ["platform-admins", "data-engineers"]},
             "ssoClientSecret": "example-client-secret", "teams": TEAMS})
# What FAB maps each group to: sorted, without repeats, Admin beside the teams' roles for the shared admin group.
MAPPING = {"analysts": ["analytics"], "data-engineers": ["Admin", "analytics", "marketing"], "marketing-analysts": ["marketing"],
           "platform-admins": ["Admin"]}
FROM_THE_ENVIRONMENT = "client-secret-from-the-pod-environment"
# flask_appbuilder.const.AUTH_OAUTH in Flask-AppBuilder 5.2.2, the platform image's (requirements-e2e.txt).
FAB_AUTH_OAUTH = 4


def without_sso(stack: str, entry: bool = True) -> dict:
    """A stack file's config without sso, its secret and the teams' groups (which need sso), and optionally without the entry."""
    config = stack_config(stack)
    for key in ("airflow-platform:sso", "airflow-platform:ssoClientSecret", *(() if entry else ("airflow-platform:entry",))):
        del config[key]
    for team in config["airflow-platform:teams"]:
        team.pop("ssoGroups", None)
    return config


def run_fab_module(monkeypatch) -> dict:
    """The generated webserver_config.py executed as the API server imports it (Flask-AppBuilder's constant and the FAB
    provider's security manager stubbed: this environment has neither; tests/e2e/test_sso_login.py runs the real ones)."""
    const = types.ModuleType("flask_appbuilder.const")
    const.AUTH_OAUTH = FAB_AUTH_OAUTH
    monkeypatch.setitem(sys.modules, "flask_appbuilder", types.ModuleType("flask_appbuilder"))
    monkeypatch.setitem(sys.modules, "flask_appbuilder.const", const)
    override = "airflow.providers.fab.auth_manager.security_manager.override"
    parts = override.split(".")
    for index in range(1, len(parts)):
        monkeypatch.setitem(sys.modules, ".".join(parts[:index]), types.ModuleType(".".join(parts[:index])))
    module = types.ModuleType(override)
    module.FabAirflowSecurityManagerOverride = type("FabAirflowSecurityManagerOverride", (), {})
    monkeypatch.setitem(sys.modules, override, module)
    namespace: dict = {}
    exec(compile(sso.fab_config(CFG.sso, CFG.teams), "webserver_config.py", "exec"), namespace)
    return namespace


@pytest.fixture
def fab_module(monkeypatch) -> dict:
    """The module's settings with the secret in the environment, as the API server's pod has it."""
    monkeypatch.setenv(sso.CLIENT_SECRET_ENV, FROM_THE_ENVIRONMENT)
    return run_fab_module(monkeypatch)


class TestAirflowRoles:
    """Tests the group -> roles mapping FAB applies at every login."""

    def test_shared_and_admin_groups(self):
        """A group two teams list gives both teams' roles, plus Admin when it is also an admin group; sorted, no repeats."""
        assert sso.roles_mapping(CFG.sso, CFG.teams) == MAPPING

    def test_teams_without_groups_map_nothing(self):
        """A team without ssoGroups has no group: only the admin groups are mapped, everyone else is Public."""
        cfg = parse({**MINIMAL, "entry": ENTRY, "sso": SSO, "ssoClientSecret": "example-client-secret",
                     "teams": [{**team, "ssoGroups": []} for team in TEAMS]})
        assert sso.roles_mapping(cfg.sso, cfg.teams) == {"platform-admins": ["Admin"]}


class TestFabModule:
    """Tests the API server's webserver_config.py as Python runs it."""

    def test_login_through_the_provider(self, fab_module):
        """OAuth login through the one provider, users registered with no permission and their roles re-synced at each login."""
        settings = {k: v for k, v in fab_module.items() if k.startswith("AUTH_")}
        assert settings == {
            "AUTH_OAUTH": FAB_AUTH_OAUTH,  # imported by the module
            "AUTH_TYPE": FAB_AUTH_OAUTH,
            "AUTH_USER_REGISTRATION": True,
            "AUTH_USER_REGISTRATION_ROLE": "Public",
            "AUTH_ROLES_SYNC_AT_LOGIN": True,
            "AUTH_ROLES_MAPPING": MAPPING,
        }

    def test_provider(self, fab_module):
        """The provider named oidc (so the callback is /auth/oauth-authorized/oidc) reads the issuer's discovery document and
        asks for the scopes; its secret is the environment's."""
        assert fab_module["OAUTH_PROVIDERS"] == [{
            "name": "oidc", "icon": "fa-key", "token_key": "access_token",
            "remote_app": {"client_id": "airflow-platform",
                           "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
                           "client_kwargs": {"scope": "openid email profile groups"},
                           "client_secret": FROM_THE_ENVIRONMENT},
        }]
        assert sso.AIRFLOW_CALLBACK_PATH == f"/auth/oauth-authorized/{sso.PROVIDER}" == "/auth/oauth-authorized/oidc"

    def test_security_manager_guards_password_accounts(self, fab_module):
        """FAB is given the platform's security manager, which extends the provider's own (FAB refuses any other)."""
        manager = fab_module["SECURITY_MANAGER_CLASS"]
        assert (manager.__name__, [base.__name__ for base in manager.__bases__]) == (
            "PlatformSecurityManager", ["FabAirflowSecurityManagerOverride"])
        assert "auth_user_oauth" in vars(manager)

    def test_no_secret_and_nothing_for_helm(self):
        """The text holds no secret (only the variable's name) and no `{{`, which the chart's tpl would read as a template."""
        text = sso.fab_config(CFG.sso, CFG.teams)
        assert "example-client-secret" not in text and "{{" not in text
        assert f"os.environ[{sso.CLIENT_SECRET_ENV!r}]" in text

    def test_missing_secret_stops_the_module(self, monkeypatch):
        """Without the variable the module fails at import, so an API server without the Secret never starts half-configured."""
        monkeypatch.delenv(sso.CLIENT_SECRET_ENV, raising=False)
        with pytest.raises(KeyError) as missing:
            run_fab_module(monkeypatch)
        assert missing.value.args == (sso.CLIENT_SECRET_ENV,)


class TestGrafana:
    """Tests the grafana.ini sections and the role expression."""

    def test_role_expression(self):
        """One contains() per admin group, Admin if any matches, Viewer otherwise."""
        assert sso.grafana_role_expression(CFG.sso) == (
            "(contains(groups[*], 'platform-admins') || contains(groups[*], 'data-engineers')) && 'Admin' || 'Viewer'")

    @pytest.mark.parametrize("groups, role", [
        (["platform-admins"], "Admin"), (["analysts", "data-engineers"], "Admin"), (["analysts", "marketing-analysts"], "Viewer"),
        ([], "Viewer"), (["platform-admins-old"], "Viewer"),
    ], ids=["admin", "second-admin-group", "team-member", "no-group", "prefix-is-not-a-match"])
    def test_role_expression_evaluates(self, groups, role):
        """Evaluated by JMESPath over a userinfo document, as Grafana evaluates role_attribute_path."""
        assert jmespath.search(sso.grafana_role_expression(CFG.sso), {"preferred_username": "someone", "groups": groups}) == role

    def test_sections(self):
        """The public URL Grafana builds the redirect URI from, and the generic OAuth login without its secret."""
        ini = sso.grafana_ini(CFG.sso, CFG.entry)
        assert ini["server"] == {"root_url": "https://grafana.data.example.com"}
        oauth = ini["auth.generic_oauth"]
        assert (oauth["client_id"], oauth["auth_url"], oauth["token_url"], oauth["api_url"], oauth["scopes"]) == (
            "airflow-platform", "https://login.example.com/authorize", "https://login.example.com/token",
            "https://login.example.com/userinfo", "openid email profile groups")
        assert oauth["role_attribute_path"] == sso.grafana_role_expression(CFG.sso)
        assert "client_secret" not in oauth and "example-client-secret" not in str(ini)
        assert sso.GRAFANA_CLIENT_SECRET_ENV == "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"  # GF_<SECTION>_<KEY> of that section


class TestValues:
    """Tests what the entry and sso keys put into the Airflow and kube-prometheus-stack values."""

    def test_disabled_by_default(self):
        """Without sso: no webserver_config.py, no variable, no Grafana OAuth; without the entry either: no public URLs."""
        for cfg in (typed_config(without_sso("dev")), typed_config(without_sso("dev", entry=False))):
            api_server = airflow_values(cfg, WIRING)["apiServer"]
            assert "apiServerConfig" not in api_server
            assert sso.CLIENT_SECRET_ENV not in [e["name"] for e in api_server.get("env", [])]
            grafana = kps_values(cfg, "gp3-encrypted")["grafana"]
            assert "envValueFrom" not in grafana and "auth.generic_oauth" not in grafana.get("grafana.ini", {})
        bare = typed_config(without_sso("dev", entry=False))
        config = airflow_values(bare, WIRING)["config"]
        assert ("base_url" not in config["api"], "fab" in config, "api_auth" in config) == (True, False, False)
        assert "grafana.ini" not in kps_values(bare, "gp3-encrypted")["grafana"]

    def test_entry_without_sso(self):
        """The entry alone: Airflow's and Grafana's public https URLs, and FAB behind the load balancer."""
        cfg = typed_config(without_sso("dev"))
        config = airflow_values(cfg, WIRING)["config"]
        assert config["api"]["base_url"] == "https://airflow.dev.data.example.com"
        assert config["fab"] == {"enable_proxy_fix": "True", "proxy_fix_x_for": 1, "proxy_fix_x_proto": 1, "proxy_fix_x_port": 1,
                                 "proxy_fix_x_host": 0, "proxy_fix_x_prefix": 0, "cookie_secure": "True"}
        assert kps_values(cfg, "gp3-encrypted")["grafana"]["grafana.ini"] == {"server": {"root_url": "https://grafana.dev.data.example.com"},
                                                                          "security": {"cookie_secure": True}}

    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_sso(self, stack):
        """With sso: the API server's config module and its variable from the Secret; Grafana's sections and its variable."""
        cfg = typed_config(stack_config(stack))
        api_server = airflow_values(cfg, WIRING)["apiServer"]
        assert api_server["apiServerConfig"] == sso.fab_config(cfg.sso, cfg.teams)
        assert [e for e in api_server["env"] if e["name"] == sso.CLIENT_SECRET_ENV] == [{
            "name": sso.CLIENT_SECRET_ENV, "valueFrom": {"secretKeyRef": {"name": SECRETS.sso_client_secret, "key": "client-secret"}}}]
        grafana = kps_values(cfg, "gp3-encrypted")["grafana"]
        assert grafana["grafana.ini"] == {**sso.grafana_ini(cfg.sso, cfg.entry), "security": {"cookie_secure": True}}
        # A login lasts sso.sessionHours (8 by default): the longest a user removed from a group keeps its role.
        assert airflow_values(cfg, WIRING)["config"]["api_auth"] == {"jwt_expiration_time": 28800}
        assert grafana["envValueFrom"] == {"GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": {"secretKeyRef": {"name": "grafana-sso", "key": "client-secret"}}}
        # The break-glass admin stays.
        assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}


class TestBehindTheEntry:
    """Tests the [fab] proxy settings with werkzeug's ProxyFix, which FAB wraps its app in (werkzeug 3.1.9 here and in the
    platform image's Airflow), on a request as the ALB forwards it to the API server, whose Flask app is mounted at /auth."""

    @staticmethod
    def callback_url(headers: dict[str, str], proxy_fix: bool = True, **trusted: int) -> str:
        app = flask.Flask("fab")

        @app.route(f"/login/{sso.PROVIDER}")
        def login():
            return flask.url_for("callback", _external=True)

        app.add_url_rule(sso.AIRFLOW_CALLBACK_PATH.removeprefix("/auth"), "callback", lambda: "")
        if proxy_fix:
            app.wsgi_app = ProxyFix(app.wsgi_app, **trusted)
        # The ALB reaches the pod over plain http on the API server's port, and passes the client's Host header through.
        response = Client(app.wsgi_app).get(f"/login/{sso.PROVIDER}", base_url="http://10.40.1.23:8080/auth",
                                             headers={"Host": "airflow.data.example.com", **headers})
        return response.get_data(as_text=True)

    TRUSTED = {option.removeprefix("proxy_fix_"): count for option, count in BEHIND_THE_ENTRY.items()}
    ALB = {"X-Forwarded-For": "10.8.1.2", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}
    FORGED = {"X-Forwarded-Host": "attacker.example.net", "X-Forwarded-Prefix": "/elsewhere"}

    def test_redirect_uri_is_the_registered_one(self):
        """The redirect URI FAB sends to the provider is https on the public name, the one registered at the provider."""
        assert self.callback_url(self.ALB, **self.TRUSTED) == f"https://airflow.data.example.com{sso.AIRFLOW_CALLBACK_PATH}"

    def test_forged_host_and_prefix_are_ignored(self):
        """Headers the ALB does not set but passes through from the client change nothing; with the provider's default
        counts (one of each) they would move the redirect URI to the client's choice."""
        assert self.callback_url({**self.ALB, **self.FORGED}, **self.TRUSTED) == f"https://airflow.data.example.com{sso.AIRFLOW_CALLBACK_PATH}"
        assert self.callback_url({**self.ALB, **self.FORGED}, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1).startswith(
            "https://attacker.example.net/elsewhere/")

    def test_without_the_proxy_fix_the_uri_is_plain_http(self):
        """What the provider would refuse: the pod sees plain http."""
        assert self.callback_url(self.ALB, proxy_fix=False) == f"http://airflow.data.example.com{sso.AIRFLOW_CALLBACK_PATH}"
