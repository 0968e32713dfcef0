"""Tests the offline plan command: what it prints, what it writes, and how it refuses."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from policies.airflow_guard.catalog import BY_NAME, POLICIES
from tools import plan as plan_cli
from tools import render
from tools.mocks import render_policy_document
from tools.offline import SECRET_PLACEHOLDER, engine_values


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_cli, "BUILD", tmp_path / "build")
    return tmp_path / "build"


def test_dev_plan_printed_and_written(build_dir, capsys, dev_plan):
    """The dev plan lists each component in build order with its key settings, and writes every resource as JSON."""
    assert plan_cli.main(["dev"]) == 0
    out = capsys.readouterr().out
    headers = [line.split(" ")[0] for line in out.splitlines() if line and not line.startswith(" ") and "(" in line and "resources)" in line]
    assert headers == ["aws", "Network", "FlowLogs", "Cluster", "DagStorage", "DagAudit", "MetadataDatabase", "Alarms", "Observability",
                       "Keda", "AirflowAccess", "Airflow", "TaskPods", "Karpenter", "LoadBalancerController", "Entry", "NetworkPolicies"]
    assert "chart kube-prometheus-stack 88.5.3" in out and "chart opentelemetry-collector 0.170.0" in out
    assert "zones: eu-west-1a, eu-west-1b" in out
    assert ("capacity: worker slots 16 of parallelism 32; DB connections 128 (direct) of 445 that db.t4g.medium leaves Airflow; "
            "worker memory 4 × (384 + 512) + 512 = 4096 MiB of 4096") in out
    assert "instanceClass=db.t4g.medium" in out and "multiAz=false" in out and "password=[secret]" in out
    assert "encryptionConfig.provider.keyArn=<airflow-dev-cluster-key>" in out
    assert "chart airflow 1.19.0 from https://airflow.apache.org into namespace airflow" in out
    assert "chart keda 2.20.2 from https://kedacore.github.io/charts into namespace keda" in out
    assert "workers.terminationGracePeriodSeconds=5400" in out and "executor=CeleryExecutor" in out
    assert "alert AirflowSchedulerDown [critical] for 5m: (sum(rate(airflow_scheduler_heartbeat_total[5m])) or vector(0)) == 0" in out
    assert 'route severity="critical" -> critical (and continue)' in out and "receiver platform: nobody yet" in out
    written = json.loads((build_dir / "dev" / "resources.json").read_text())
    assert len(written["resources"]) == len(dev_plan.resources)
    [db] = [r for r in written["resources"] if r["type"] == "aws:rds/instance:Instance"]
    assert db["inputs"]["password"] == "[secret]"


def test_refused_stack_file_exits_2_with_the_sentence(build_dir, capsys, tmp_path):
    """A stack file with a bad key prints the one sentence and exits with status 2, writing nothing."""
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(yaml.safe_dump({"config": {"aws:region": "eu-west-1", "airflow-platform:environment": "broken",
                                               "airflow-platform:owner": "x", "airflow-platform:zones": 9}}))
    assert plan_cli.main(["--file", str(path)]) == 2
    assert capsys.readouterr().err.strip() == "Pulumi.broken.yaml: Config key 'airflow-platform:zones' must be an integer from 2 to 6 (got 9)."
    assert not (build_dir / "broken").exists()


@pytest.mark.parametrize("text, sentence", [
    ("config:\n  aws:region: eu-west-1\n   airflow-platform:zones: 3\n",
     "Pulumi.broken.yaml is not valid YAML at line 3, column 26: mapping values are not allowed here."),
    ("config:\n  airflow-platform:teams: [analytics\n", "Pulumi.broken.yaml is not valid YAML at line 3, column 1: expected ',' or ']', but got '<stream end>'."),
    ("- config\n", "Pulumi.broken.yaml must be a map with a `config:` map of keys to values, as `pulumi config set` writes it."),
], ids=["bad-indentation", "unclosed-list", "not-a-map"])
def test_stack_file_that_is_not_yaml_exits_2_with_the_place(build_dir, capsys, tmp_path, text, sentence):
    """A stack file YAML cannot read stops the plan with one sentence giving the line and column, and status 2."""
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(text)
    assert plan_cli.main(["--file", str(path)]) == 2
    captured = capsys.readouterr()
    assert (captured.err.strip(), captured.out) == (sentence, "")


def test_manifests_written_per_release_and_validated(build_dir, capsys, rendering):
    """The plan writes each release's rendered objects, one file each, and says per release how many there are and that they
    validate."""
    assert plan_cli.main(["dev", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    dev = rendering("dev")
    start = out.index(f"manifests (rendered by the charts, validated for Kubernetes 1.33, unknown fields refused): {build_dir / 'dev' / 'manifests'}/")
    lines = out[start + 1:start + 2 + len(dev.releases)]
    by_release = {line.split(":")[0].strip(): line for line in lines[:-1]}
    assert sorted(by_release) == sorted(dev.releases)
    for name, release in dev.releases.items():
        assert by_release[name].startswith(f"  {name}: {release.chart}, {len(release.objects)} objects, all valid")
    assert lines[-1] == f"  program: {len(render.program_objects(dev.plan))} objects declared directly, all valid"
    airflow = build_dir / "dev" / "manifests" / "airflow"
    assert len(list(airflow.iterdir())) == len(dev.releases["airflow"].objects)
    worker = yaml.safe_load((airflow / "deployment-airflow-worker.yaml").read_text())
    assert worker == dev.releases["airflow"].named("Deployment", "airflow-worker")


def test_manifests_never_show_a_secret_value(build_dir, capsys, rendering):
    """A Secret a chart renders is written with a short digest per value, so a change shows and the value does not."""
    assert plan_cli.main(["prod", "--quiet"]) == 0
    secret = rendering("prod").releases["kube-prometheus-stack"].named("Secret", "alertmanager-kube-prometheus-stack-alertmanager")
    written = yaml.safe_load((build_dir / "prod" / "manifests" / "kube-prometheus-stack" /
                              "secret-alertmanager-kube-prometheus-stack-alertmanager.yaml").read_text())
    value = secret["data"]["alertmanager.yaml"]
    assert written["data"] == {"alertmanager.yaml": f"[secret sha256:{hashlib.sha256(value.encode()).hexdigest()[:12]}]"}
    assert value not in (build_dir / "prod" / "manifests" / "kube-prometheus-stack" /
                         "secret-alertmanager-kube-prometheus-stack-alertmanager.yaml").read_text()


def test_prod_plan_passes_its_policy_config(build_dir, capsys):
    """The prod plan is checked with policies/config/prod.json and exits 0: no violation at all."""
    assert plan_cli.main(["prod", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"policies (policies/config/prod.json): {len(POLICIES)} checked, 0 mandatory violations, 0 advisory")


def test_mandatory_violation_exits_3_with_the_fix(build_dir, capsys):
    """Dev judged by prod's policy config: each mandatory violation printed with its remediation, exit status 3."""
    assert plan_cli.main(["dev", "--quiet", "--policy-config", "policies/config/prod.json"]) == 3
    out = capsys.readouterr().out.split("\npolicies ")[1].splitlines()
    assert out[0] == f"(policies/config/prod.json): {len(POLICIES)} checked, 6 mandatory violations, 0 advisory"
    multi_az = out.index("  MANDATORY rds-multi-az: instance airflow-dev-db-postgres runs in one zone")
    assert out[multi_az + 1] == f"      fix: {BY_NAME['rds-multi-az'].remediation}"
    assert "  MANDATORY eks-node-groups-span-zones: node group airflow-dev-cluster-system spans 2 zones (eu-west-1a, eu-west-1b), " \
           "fewer than 3" in out


def test_bad_policy_config_exits_2_before_planning(build_dir, capsys, tmp_path):
    """A policy config the CLI would refuse stops the plan with its sentence and status 2."""
    path = tmp_path / "strict.json"
    path.write_text(json.dumps({"all": "strict"}))
    assert plan_cli.main(["prod", "--policy-config", str(path)]) == 2
    assert capsys.readouterr().err.strip() == "policy config: all has enforcement level 'strict'; allowed: advisory, mandatory, remediate, disabled."
    assert not (build_dir / "prod").exists()


def test_unknown_stack_names_the_known_ones(build_dir, capsys):
    """Asking for a stack without a file names the stacks that exist."""
    assert plan_cli.main(["staging"]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.staging.yaml" in err and err.strip().endswith("name one of: dev, prod")


def test_policy_rendering_matches_iam_grammar():
    """The mocked getPolicyDocument writes IAM's element names, one value as a string, several as a list."""
    document = json.loads(render_policy_document({"statements": [{
        "sid": "A", "actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/*"],
        "principals": [{"type": "AWS", "identifiers": ["arn:aws:iam::1:root"]}],
        "conditions": [{"test": "StringEquals", "variable": "k", "values": ["v"]},
                       {"test": "StringEquals", "variable": "j", "values": ["w", "x"]}]}]}))
    assert document == {"Version": "2012-10-17", "Statement": [{
        "Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b/*", "arn:aws:s3:::c/*"],
        "Principal": {"AWS": "arn:aws:iam::1:root"}, "Condition": {"StringEquals": {"k": "v", "j": ["w", "x"]}}}]}


def test_stack_file_values_reach_the_program_as_the_cli_passes_them():
    """Scalars become strings, structures JSON, and secure values placeholders marked secret."""
    values, secret_keys = engine_values({"a:n": 3, "a:b": True, "a:m": {"k": [1]}, "a:s": {"secure": "v1:abc"}})
    assert values == {"a:n": "3", "a:b": "true", "a:m": '{"k": [1]}', "a:s": SECRET_PLACEHOLDER}
    assert secret_keys == ["a:s"]


def test_release_from_an_oci_mirror_is_shown_by_its_reference(plan_with):
    """A chart from an OCI registry is named by its full reference, with no Helm repository beside it."""
    registry = "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/helm-charts"
    text = plan_cli.render(plan_with("dev", {"airflow-platform:chartRepositories": {"keda": registry}}))
    assert f"      chart {registry}/keda 2.20.2 into namespace keda" in text.splitlines()
