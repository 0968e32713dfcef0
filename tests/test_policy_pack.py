"""Tests the CrossGuard pack as the Pulumi CLI drives it: `policies/__main__.py` started as the CLI starts it, then
spoken to over the analyzer gRPC protocol (GetAnalyzerInfo, Configure, Analyze, AnalyzeStack) with the prod
stack's resources."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE

from policies.airflow_guard.catalog import BY_NAME, POLICIES
from policies.airflow_guard.engine import CONFIG_DIR, load_config, settings
from policies.airflow_guard.pack import crossguard_policies
from tools.offline import ROOT

LEVELS = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY, "disabled": analyzer_pb2.DISABLED}
DB = "airflow-prod-db-postgres"


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


@pytest.fixture(scope="module")
def analyzer():
    """The pack, started from policies/ with `python __main__.py` (what PulumiPolicy.yaml's python runtime does)."""
    process = subprocess.Popen([sys.executable, "__main__.py"], cwd=ROOT / "policies", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def configured(analyzer):
    """The analyzer configured with policies/config/prod.json, resolved per policy as the CLI sends it."""
    request = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, setting in settings(load_config(CONFIG_DIR / "prod.json")).items():
        request.policyConfig[name].CopyFrom(analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[setting.level],
                                                                      properties=struct(dict(setting.properties))))
    analyzer.Configure(request)
    return analyzer


@pytest.fixture(scope="module")
def prod_resources(prod_plan) -> list[dict[str, Any]]:
    """The prod plan's resources as JSON (secrets redacted), with their provider's inputs."""
    providers = {r.urn: r for r in prod_plan.resources if r.type.startswith("pulumi:providers:")}
    resources = []
    for r in prod_plan.resources:
        provider = providers.get(r.provider.rsplit("::", 1)[0])
        resources.append({"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "props": json.loads(json.dumps(r.to_json()["inputs"])),
                          "propertyDependencies": r.property_dependencies,
                          "provider": provider and {"type": provider.type, "urn": provider.urn, "name": provider.name,
                                                    "props": json.loads(json.dumps(provider.to_json()["inputs"]))}})
    return resources


def _provider(resource: dict[str, Any]) -> analyzer_pb2.AnalyzerProviderResource | None:
    p = resource["provider"]
    return analyzer_pb2.AnalyzerProviderResource(type=p["type"], urn=p["urn"], name=p["name"], properties=struct(p["props"])) if p else None


def analyze(analyzer, resource: dict[str, Any]) -> analyzer_pb2.AnalyzeResponse:
    return analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=resource["type"], name=resource["name"], urn=resource["urn"],
                                                        properties=struct(resource["props"]), provider=_provider(resource),
                                                        options=analyzer_pb2.AnalyzerResourceOptions()))


def analyze_stack(analyzer, resources: list[dict[str, Any]]) -> analyzer_pb2.AnalyzeResponse:
    return analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[analyzer_pb2.AnalyzerResource(
        type=r["type"], name=r["name"], urn=r["urn"], properties=struct(r["props"]), parent=r["parent"], provider=_provider(r),
        options=analyzer_pb2.AnalyzerResourceOptions(),
        propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v) for k, v in r["propertyDependencies"].items()})
        for r in resources]))


def named(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(r for r in resources if r["name"] == name)


def diagnostics(response: analyzer_pb2.AnalyzeResponse) -> list[tuple[str, int, str, str]]:
    return [(d.policyName, d.enforcementLevel, d.urn.rsplit("::", 1)[-1], d.message) for d in response.diagnostics]


class TestPackDefinition:
    """Tests what the pack declares about each policy."""

    def test_resource_and_stack_policies(self):
        """A policy that reads other resources is a stack policy; every other one a resource policy, in catalog order."""
        pack = crossguard_policies()
        assert [p.name for p in pack] == [p.name for p in POLICIES]
        assert [isinstance(p, StackValidationPolicy) for p in pack] == [p.needs_stack for p in POLICIES]
        assert all(isinstance(p, ResourceValidationPolicy) for p in pack if not BY_NAME[p.name].needs_stack)

    def test_analyzer_info(self, analyzer):
        """The CLI sees the pack's name, every policy advisory by default, with severity, remediation, Checkov tags and schema."""
        info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
        assert info.name == "airflow-platform" and info.supportsConfig
        policies = {p.name: p for p in info.policies}
        assert list(policies) == [p.name for p in POLICIES]
        assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.ADVISORY}
        versioning = policies["s3-bucket-versioning-enabled"]
        assert (versioning.severity, list(versioning.tags), versioning.policy_type) == (
            analyzer_pb2.POLICY_SEVERITY_MEDIUM, ["checkov:CKV_AWS_21"], analyzer_pb2.POLICY_TYPE_STACK)
        assert versioning.remediation_steps == BY_NAME["s3-bucket-versioning-enabled"].remediation
        zones = policies["eks-node-groups-span-zones"].configSchema.properties["minimumZones"]
        assert (zones["type"], zones["default"]) == ("integer", 2)


class TestProdStack:
    """Tests the real prod stack through the analyzer, configured with prod's policy config."""

    def test_every_resource_passes(self, configured, prod_resources):
        """Analyze, resource by resource, reports nothing for prod."""
        assert [d for r in prod_resources for d in diagnostics(analyze(configured, r))] == []

    def test_stack_passes(self, configured, prod_resources):
        """AnalyzeStack reports nothing for prod."""
        assert diagnostics(analyze_stack(configured, prod_resources)) == []

    def test_single_zone_database_is_a_mandatory_violation(self, configured, prod_resources):
        """multiAz false comes back as one mandatory diagnostic, with the description, the finding and the fix."""
        db = json.loads(json.dumps(named(prod_resources, DB)))
        db["props"]["multiAz"] = False
        policy = BY_NAME["rds-multi-az"]
        assert diagnostics(analyze(configured, db)) == [
            ("rds-multi-az", analyzer_pb2.MANDATORY, DB, f"{policy.description}\ninstance {DB} runs in one zone.\nFix: {policy.remediation}")]

    def test_stack_violation_names_the_resource(self, configured, prod_resources):
        """A parameter group that stops forcing TLS is reported against the instance that uses it."""
        resources = json.loads(json.dumps(prod_resources))
        named(resources, "airflow-prod-db-params")["props"]["parameters"][0]["value"] = "0"
        [(policy, level, urn_name, message)] = diagnostics(analyze_stack(configured, resources))
        assert (policy, level, urn_name) == ("rds-tls-enforced", analyzer_pb2.MANDATORY, DB)
        assert f"instance {DB}'s parameter group airflow-prod-db-params does not set rds.force_ssl=1." in message

    def test_unknown_value_makes_a_resource_policy_not_applicable(self, configured, prod_resources):
        """In a first preview multiAz may be unknown: the policy says so instead of passing or failing."""
        db = json.loads(json.dumps(named(prod_resources, DB)))
        db["props"]["multiAz"] = UNKNOWN_BOOLEAN_VALUE
        response = analyze(configured, db)
        assert diagnostics(response) == []
        assert [(n.policy_name, n.reason) for n in response.not_applicable] == [
            ("rds-multi-az", "a value it reads is unknown until the update runs")]

    def test_unknown_value_skips_one_resource_of_a_stack_policy(self, configured, prod_resources):
        """An unknown versioning status leaves that bucket undecided, without the SDK's 'can't run policy' for the whole stack."""
        resources = json.loads(json.dumps(prod_resources))
        named(resources, "airflow-prod-dags-versioning")["props"]["versioningConfiguration"]["status"] = UNKNOWN_STRING_VALUE
        named(resources, "airflow-prod-db-postgres")["props"]["deletionProtection"] = False
        assert [d[:3] for d in diagnostics(analyze_stack(configured, resources))] == []
        assert [d[:3] for d in diagnostics(analyze(configured, named(resources, DB)))] == [
            ("rds-deletion-protection", analyzer_pb2.MANDATORY, DB)]
