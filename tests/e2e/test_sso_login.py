"""Tests single sign-on in real Airflow 3.1.7: an API server with the FAB auth manager and the webserver_config.py that
components/sso.py generates, in its AIRFLOW_HOME as the chart mounts it, logs users in through an OIDC provider
stand-in (tests/e2e/oidc_provider.py) and gives them the roles of their groups, on a PostgreSQL metadata DB holding the
team roles the team-roles script creates and one DAG per team that grants its team's role access."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from components.airflow_values import FAB_AUTH_MANAGER
from components.config.sso import SsoConfig
from components.config.teams import TeamConfig
from components.sso import AIRFLOW_CALLBACK_PATH, CLIENT_SECRET_ENV, PROVIDER, airflow_settings, fab_config
from components.team_roles import team_roles_script
from tests.e2e.local_airflow import AIRFLOW_VENV, Process
from tests.e2e.oidc_provider import OidcProvider, User
from tests.e2e.services import Postgres, free_port, wait_for

CLIENT_ID = "airflow-platform"
ADMIN_GROUP = "platform-admins"
# The break-glass account, as the chart's create-user Job makes it (components/airflow_values.py).
ADMIN = "admin"
TEAMS = [TeamConfig(name="analytics", owner="analytics@example.com", repository="example-org/analytics-dags",
                    sso_groups=["data-analytics"]),
         TeamConfig(name="finance", owner="finance@example.com", repository="example-org/finance-dags",
                    sso_groups=["data-finance"])]
# One DAG per team, granting its team's role access as dagtool check insists.
DAG_OF_TEAM = {"analytics": "analytics_orders", "finance": "finance_ledger"}
DAG_FILE = '''from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="{dag_id}", start_date=datetime(2026, 1, 1), schedule=None, tags=["{team}"],
         default_args={{"owner": "{team}@example.com"}}, access_control={{"{team}": {{"DAGs": {{"can_read", "can_edit"}}}}}}):
    EmptyOperator(task_id="load")
'''


@dataclass
class SsoAirflow:
    """The running API server, its provider stand-in and metadata DB, and what a browser does against them."""

    api: str
    home: Path
    provider: OidcProvider
    postgres: Postgres
    sso: SsoConfig
    client_secret: str
    admin_password: str

    def log_in(self, user: User) -> tuple[requests.Session, requests.Response]:
        """A new browser session through the whole login (every redirect followed); returns it and the last answer."""
        self.provider.log_in_as(user)
        browser = requests.Session()
        # Per request: a REQUESTS_CA_BUNDLE in the environment would win over the session's own `verify`.
        return browser, browser.get(f"{self.api}/auth/login/{PROVIDER}", verify=str(self.provider.ca_file), timeout=60)

    def roles(self, username: str) -> list[str]:
        """The user's roles in the metadata DB, sorted."""
        return sorted(self.postgres.sql(
            "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id JOIN ab_role r ON r.id = ur.role_id "
            f"WHERE u.username = '{username}'").splitlines())

    def dags(self, browser: requests.Session) -> requests.Response:
        return browser.get(f"{self.api}/api/v2/dags", timeout=60)


def _run(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> None:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)[:200]} exited {result.returncode}: {(result.stdout + result.stderr)[-3000:]}")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> SsoAirflow:
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.fail(f"{AIRFLOW_VENV} is missing: `make test` installs it from requirements-e2e.txt")
    # FAB imports authlib for AUTH_OAUTH only when the app starts: without it the API server would just not come up.
    probe = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", "import authlib"], capture_output=True, text=True)
    if probe.returncode:
        pytest.fail(f"authlib is missing from {AIRFLOW_VENV}: `make test` installs it from requirements-e2e.txt")
    root = tmp_path_factory.mktemp("sso")
    home = root / "airflow"
    (home / "dags").mkdir(parents=True)
    client_secret = secrets.token_urlsafe(24)
    postgres, provider, server = Postgres(), None, None
    try:
        postgres.start()
        provider = OidcProvider(root / "provider", CLIENT_ID, client_secret)
        api_port = free_port()
        api = f"http://127.0.0.1:{api_port}"
        provider.redirect_uris.add(f"{api}{AIRFLOW_CALLBACK_PATH}")
        sso = SsoConfig(issuer=provider.issuer, client_id=CLIENT_ID, authorization_url=provider.endpoint("authorize"),
                        token_url=provider.endpoint("token"), userinfo_url=provider.endpoint("userinfo"), admin_groups=[ADMIN_GROUP])
        # [fab] config_file's default, {AIRFLOW_HOME}/webserver_config.py, where the chart mounts the file.
        (home / "webserver_config.py").write_text(fab_config(sso, TEAMS))
        for team, dag_id in DAG_OF_TEAM.items():
            (home / "dags" / f"{dag_id}.py").write_text(DAG_FILE.format(dag_id=dag_id, team=team))
        env = {"HOME": str(home), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
               "PATH": f"{AIRFLOW_VENV / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
               "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32), "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
               # What the API server's pod has: the secret from the Kubernetes Secret; and trust in the stand-in's certificate.
               # (Every process that loads webserver_config.py needs the secret's variable, the FAB CLI as well.)
               CLIENT_SECRET_ENV: client_secret, "REQUESTS_CA_BUNDLE": str(provider.ca_file),
               # The rest of what the platform sets for SSO, as the chart writes it into airflow.cfg.
               **{f"AIRFLOW__{section.upper()}__{key.upper()}": str(value)
                  for section, options in airflow_settings(sso).items() for key, value in options.items()}}
        _run(["airflow", "db", "migrate"], env, home, timeout=600)
        admin_password = secrets.token_urlsafe(24)
        _run(["airflow", "users", "create", "--role", "Admin", "--username", ADMIN, "--email", "admin@example.com",
              "--firstname", "Platform", "--lastname", "Admin", "--password", admin_password], env, home)
        _run(["bash", "-c", team_roles_script([team.name for team in TEAMS])], env, home)
        # The DAG processor's write, once: each DAG serialized, and its access_control synced to the team's role.
        _run(["airflow", "dags", "reserialize"], env, home)
        log = home / "api-server.log"
        popen = subprocess.Popen(["airflow", "api-server", "--host", "127.0.0.1", "--port", str(api_port)], env=env, cwd=home,
                                 stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        server = Process("api-server-0", popen, log)
        wait_for(lambda: popen.poll() is not None or _ok(f"{api}/api/v2/monitor/health"), "the API server answering", timeout=120)
        if popen.poll() is not None:
            raise RuntimeError(f"the API server exited {popen.returncode}")
        yield SsoAirflow(api, home, provider, postgres, sso, client_secret, admin_password)
    except Exception as error:
        tail = "\n".join(server.log.read_text(errors="replace").splitlines()[-60:]) if server else ""
        raise RuntimeError(f"{error}\n{tail}") from error
    finally:
        if server:
            server.stop()
        if provider:
            provider.stop()
        postgres.stop()


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _dag_ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(dag["dag_id"] for dag in response.json()["dags"])


def test_login_goes_to_the_provider_and_back_with_a_token_cookie(airflow):
    """The login goes to the provider's /authorize and back to the callback, then to the UI with the API's JWT in an HTTP-only `_token` cookie."""
    browser, response = airflow.log_in(User("lee", "Lee", "Ng", ["data-analytics"]))
    hops = [(r.status_code, urlsplit(r.url).netloc, urlsplit(r.url).path) for r in [*response.history, response]]
    api, provider = urlsplit(airflow.api).netloc, urlsplit(airflow.provider.issuer).netloc
    assert hops == [(302, api, f"/auth/login/{PROVIDER}"), (302, provider, "/authorize"), (302, api, AIRFLOW_CALLBACK_PATH),
                    (302, api, "/auth/"), (200, api, "/")]
    request = airflow.provider.authorize_requests[-1]
    assert (request["client_id"], request["redirect_uri"], request["response_type"], request["scope"]) == (
        CLIENT_ID, f"{airflow.api}{AIRFLOW_CALLBACK_PATH}", "code", "openid email profile groups")
    assert request["nonce"] and request["state"]
    [cookie] = [c for c in browser.cookies if c.name == "_token"]
    assert (cookie.path, cookie.secure, cookie.has_nonstandard_attr("HttpOnly")) == ("/", False, True)
    # The auth manager's JWT names the FAB user and nothing of their roles, which it reads from the DB at every call.
    claims = json.loads(base64.urlsafe_b64decode(cookie.value.split(".")[1] + "=="))
    assert (claims["sub"], claims["aud"]) == (airflow.postgres.sql("SELECT id FROM ab_user WHERE username = 'lee'"), "apache-airflow")
    assert requests.get(f"{airflow.api}/api/v2/dags", headers={"Authorization": f"Bearer {cookie.value}"}, timeout=60).status_code == 200


def test_team_member_gets_their_teams_role_and_sees_its_dags(airflow):
    """A member of a team's group gets that team's role beside FAB's registration role, Public, and sees exactly that team's DAG."""
    browser, _ = airflow.log_in(User("ana", "Ana", "Silva", ["data-analytics", "all-staff"]))
    assert airflow.roles("ana") == ["Public", "analytics"]
    assert airflow.postgres.sql("SELECT first_name, last_name, email, active FROM ab_user WHERE username = 'ana'") == (
        "Ana|Silva|ana@example.com|t")
    assert _dag_ids(airflow.dags(browser)) == ["analytics_orders"]


def test_user_without_a_mapped_group_gets_only_public_and_is_refused_the_dags(airflow):
    """A user with no mapped group gets Public alone, which grants nothing, and is refused the DAG list."""
    browser, response = airflow.log_in(User("uma", "Uma", "Okafor", ["all-staff"]))
    assert response.status_code == 200 and browser.cookies.get("_token")
    assert airflow.roles("uma") == ["Public"]
    assert airflow.postgres.sql("SELECT count(*) FROM ab_permission_view_role pvr JOIN ab_role r ON r.id = pvr.role_id "
                                "WHERE r.name = 'Public'") == "0"
    refused = airflow.dags(browser)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Forbidden"})


def test_admin_group_gets_admin_and_sees_every_dag(airflow):
    """A member of an admin group gets Admin beside Public and sees every team's DAG."""
    browser, _ = airflow.log_in(User("pat", "Pat", "Admin", [ADMIN_GROUP]))
    assert airflow.roles("pat") == ["Admin", "Public"]
    assert _dag_ids(airflow.dags(browser)) == ["analytics_orders", "finance_ledger"]


def test_roles_follow_the_groups_at_every_login(airflow):
    """A user who moved from one team's group to another's has, from their next login, only the new team's role and DAG."""
    sam = User("sam", "Sam", "Weber", ["data-analytics"])
    before, _ = airflow.log_in(sam)
    assert (airflow.roles("sam"), _dag_ids(airflow.dags(before))) == (["Public", "analytics"], ["analytics_orders"])
    sam.groups = ["data-finance"]
    after, _ = airflow.log_in(sam)
    assert (airflow.roles("sam"), _dag_ids(airflow.dags(after))) == (["Public", "finance"], ["finance_ledger"])
    # The token of the earlier login holds no roles either: it now sees what the new ones grant.
    assert _dag_ids(airflow.dags(before)) == ["finance_ledger"]
    assert airflow.postgres.sql("SELECT count(*) FROM ab_user WHERE username = 'sam'") == "1"


def test_client_secret_reaches_only_the_token_endpoint_from_the_environment(airflow):
    """The API server sends the secret of its environment to /token alone; the generated config file it reads holds none."""
    seen = len(airflow.provider.token_requests)
    airflow.log_in(User("tess", "Tess", "Ruiz", ["data-finance"]))
    assert [(r["method"], r["client_id"], r["client_secret"], r["grant_type"], r["status"])
            for r in airflow.provider.token_requests[seen:]] == [
        ("client_secret_basic", CLIENT_ID, airflow.client_secret, "authorization_code", 200)]
    config = (airflow.home / "webserver_config.py").read_text()
    assert config == fab_config(airflow.sso, TEAMS)
    assert airflow.client_secret not in config and f"os.environ[{CLIENT_SECRET_ENV!r}]" in config
    assert not any(airflow.client_secret in str(params) for params in airflow.provider.authorize_requests)


def _claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def test_a_login_lasts_the_session_hours(airflow):
    """The UI's token lives sso.sessionHours (8 by default), after which the user logs in again and their roles are re-synced."""
    browser, _ = airflow.log_in(User("kim", "Kim", "Lau", ["data-analytics"]))
    claims = _claims(browser.cookies["_token"])
    assert claims["exp"] - claims["iat"] == airflow.sso.session_hours * 3600 == 28800


def test_break_glass_admin_gets_a_token_with_its_password(airflow):
    """With the provider's login in place, the generated admin's password still buys an API token (the way in when the
    provider is down), which sees every DAG."""
    response = requests.post(f"{airflow.api}/auth/token", json={"username": ADMIN, "password": airflow.admin_password}, timeout=60)
    assert response.status_code == 201, response.text
    token = response.json()["access_token"]
    dags = requests.get(f"{airflow.api}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert _dag_ids(dags) == ["analytics_orders", "finance_ledger"]
    wrong = requests.post(f"{airflow.api}/auth/token", json={"username": ADMIN, "password": "not-it"}, timeout=60)
    assert wrong.status_code == 401


def test_provider_user_named_like_the_admin_is_refused(airflow):
    """A provider user whose username is the break-glass admin's gets no token and does not change the admin account, even
    from an admin group: FAB alone would log them into it without its password."""
    browser, _ = airflow.log_in(User(ADMIN, "Mallory", "Imposter", [ADMIN_GROUP, "data-analytics"]))
    assert browser.cookies.get("_token") is None
    assert airflow.roles(ADMIN) == ["Admin"]
    assert airflow.postgres.sql(f"SELECT first_name, last_name FROM ab_user WHERE username = '{ADMIN}'") == "Platform|Admin"
