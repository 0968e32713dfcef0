"""Tests single sign-on as the charts render it: the API server's webserver_config.py from its ConfigMap and the client
secret from its Secret, FAB behind the entry's load balancer, and the secret itself in no ConfigMap, no Helm values and no
plan file, only in the two Secrets the program declares. Grafana's side is asserted on its values (tests/test_sso.py):
../shared holds kube-prometheus-stack without its grafana subchart, so Grafana is not rendered here."""

from __future__ import annotations

import json

import pytest

from components import sso
from components.config import SECRET_KEYS
from tests.rendered import airflow_cfg, container, env, pod
from tests.test_sso import without_sso
from tools import render
from tools.offline import Plan, run_stack_config

SECRET = SECRET_KEYS["ssoClientSecret"]  # what the offline plan reads in place of the stack's ciphertext
# Each Secret (namespace, name) that holds the client secret, with the release whose pods read it.
READERS = {("airflow", "platform-airflow-sso"): "airflow", ("monitoring", "grafana-sso"): "kube-prometheus-stack"}
SSO_SECRETS = set(READERS)
API_SERVER_CONFIG = "airflow-api-server-config"


@pytest.fixture(scope="module")
def unset() -> tuple[Plan, dict[str, render.RenderedRelease]]:
    """Dev without sso (its secret and the teams' groups go with it), planned and rendered."""
    plan = run_stack_config(without_sso("dev"), "dev")
    return plan, {r.name: r for r in render.render_plan(plan)}


def api_server(releases: dict[str, render.RenderedRelease]) -> dict:
    return releases["airflow"].named("Deployment", "airflow-api-server")


def declared_secrets(plan: Plan) -> dict[tuple[str, str], object]:
    return {(r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r
            for r in plan.of_type("kubernetes:core/v1:Secret")}


def test_disabled_by_default(unset):
    """Without sso no SSO config is rendered: no webserver_config.py and no client secret for the API server, no Secret,
    no generic OAuth in Grafana's values; the entry still gives both UIs their public URLs."""
    plan, releases = unset
    assert [c["metadata"]["name"] for c in releases["airflow"].of_kind("ConfigMap")] == ["airflow-config"]
    api = api_server(releases)
    assert "api-server-config" not in [v["name"] for v in pod(api)["spec"]["volumes"]]
    assert sso.CLIENT_SECRET_ENV not in [e["name"] for e in container(api, "api-server")["env"]]
    assert not SSO_SECRETS & set(declared_secrets(plan))
    [stack] = [r for r in render.releases(plan) if r.inputs["name"] == "kube-prometheus-stack"]
    grafana = render.release_values(stack.inputs)["grafana"]
    assert (grafana["grafana.ini"], "envValueFrom" in grafana) == (
        {"server": {"root_url": "https://grafana.dev.data.example.com"}, "security": {"cookie_secure": True}}, False)
    with pytest.raises(KeyError):
        releases["airflow"].named("ConfigMap", API_SERVER_CONFIG)


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_api_server_loads_the_generated_config(rendering, variant):
    """The module the program generates is, unchanged by the chart's tpl, the ConfigMap the API server mounts at
    $AIRFLOW_HOME/webserver_config.py, where [fab] config_file points by default."""
    result = rendering(variant)
    config_map = result.releases["airflow"].named("ConfigMap", API_SERVER_CONFIG)
    assert config_map["data"]["webserver_config.py"] == sso.fab_config(result.cfg.sso, result.cfg.teams).rstrip("\n")
    api = api_server(result.releases)
    main = container(api, "api-server")
    [mount] = [m for m in main["volumeMounts"] if m["name"] == "api-server-config"]
    assert (mount["mountPath"], mount["subPath"], mount["readOnly"]) == (f"{env(main, 'AIRFLOW_HOME')}/webserver_config.py", "webserver_config.py", True)
    [volume] = [v for v in pod(api)["spec"]["volumes"] if v["name"] == "api-server-config"]
    assert volume["configMap"] == {"name": API_SERVER_CONFIG}
    assert not airflow_cfg(result).has_option("fab", "config_file")


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_api_server_reads_the_secret_from_its_secret(rendering, variant):
    """The API server's variable comes from the program's Secret, which holds the stack's client secret; no other pod of the
    release gets it."""
    result = rendering(variant)
    assert env(container(api_server(result.releases), "api-server"), sso.CLIENT_SECRET_ENV) == {
        "secretKeyRef": {"name": "platform-airflow-sso", "key": "client-secret"}}
    [secret] = [s for s in result.declared("Secret") if s["metadata"]["name"] == "platform-airflow-sso"]
    assert (secret["metadata"]["namespace"], secret["stringData"]) == ("airflow", {"client-secret": SECRET})
    others = [w["metadata"]["name"] for w in result.releases["airflow"].objects if w["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")
              and sso.CLIENT_SECRET_ENV in json.dumps(pod(w)) and w["metadata"]["name"] != "airflow-api-server"]
    assert others == []


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_fab_behind_the_entry(rendering, variant):
    """airflow.cfg names the public https URL and lets FAB trust, for one hop, only the headers the ALB sets."""
    result = rendering(variant)
    cfg = airflow_cfg(result)
    assert cfg["api"]["base_url"] == f"https://{result.cfg.entry.airflow_host}"
    assert dict(cfg["fab"]) == {"enable_proxy_fix": "True", "proxy_fix_x_for": "1", "proxy_fix_x_proto": "1", "proxy_fix_x_port": "1",
                                "proxy_fix_x_host": "0", "proxy_fix_x_prefix": "0", "cookie_secure": "True"}
    # base_url has no path: the workers still reach the execution API through the api-server Service in the cluster.
    assert cfg["core"]["execution_api_server_url"] == "http://airflow-api-server:8080/execution/"


def test_secret_only_in_its_secrets(rendering):
    """The client secret is in no rendered object, no Helm values of any release, no ConfigMap and not in the plan file: only
    in the two Secrets the program declares, marked secret."""
    dev = rendering("dev")
    assert [(o["kind"], o["metadata"]["name"]) for r in dev.releases.values() for o in r.objects if SECRET in json.dumps(o)] == []
    for release in render.releases(dev.plan):
        assert SECRET not in json.dumps(render.release_values(release.inputs)), release.name
    holding = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in dev.declared("Secret") if SECRET in json.dumps(o)}
    assert holding == SSO_SECRETS
    config_maps = dev.declared("ConfigMap") + [o for r in dev.releases.values() for o in r.of_kind("ConfigMap")]
    assert config_maps and not [c["metadata"]["name"] for c in config_maps if SECRET in json.dumps(c)]
    assert SECRET not in json.dumps(dev.plan.to_json())


@pytest.mark.parametrize("variant", ["dev", "prod"])
def test_both_secrets_exist_marked_secret(variant, rendering):
    """Each Secret holds the client secret under client-secret, its data marked secret, and the release that reads it waits
    for it."""
    plan = rendering(variant).plan
    secrets = declared_secrets(plan)
    releases = {r.inputs["name"]: r for r in render.releases(plan)}
    for place, release in READERS.items():
        secret = secrets[place]
        assert (secret.inputs["stringData"], secret.secret_inputs, secret.inputs["type"]) == ({"client-secret": SECRET}, ["stringData"], "Opaque")
        assert secret.urn in releases[release].dependencies
