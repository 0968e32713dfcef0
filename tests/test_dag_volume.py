"""Tests the DagVolume component (airflow.dagDelivery: efs): the encrypted EFS copy of the DAGs, its one writer, and the chart mounting it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import stack_config
from tools.offline import Plan, run_stack_config

COMPONENT = "airflow-platform:index:DagVolume"
VOLUME = "airflow-prod-airflow-dag-volume"
EFS_STATE = "aws:efs/"
DAG_COMPONENTS = ["workers", "triggerer", "dagProcessor"]


def efs_changes() -> dict:
    """The plan_with change that turns the option on: prod's own airflow map (dagSync.image kept) plus dagDelivery efs."""
    airflow = stack_config("prod")["airflow-platform:airflow"]
    airflow["dagDelivery"] = "efs"
    return {"airflow-platform:airflow": airflow}


@pytest.fixture(scope="module")
def plan() -> Plan:
    """Prod with dagDelivery efs, planned once for the module (what plan_with("prod", efs_changes()) does)."""
    config = stack_config("prod")
    config.update(efs_changes())
    return run_stack_config(config, "prod")


def part(plan: Plan, suffix: str):
    return plan.named(f"{VOLUME}-{suffix}")


def chart_values(plan: Plan) -> dict:
    return plan.named(f"airflow-{plan.stack}-airflow-release").inputs["values"]


def trust_subjects(plan: Plan, role_name: str) -> list[str]:
    [statement] = json.loads(plan.named(role_name).inputs["assumeRolePolicy"])["Statement"]
    [subjects] = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    return [subjects] if isinstance(subjects, str) else subjects


class TestDisabledByDefault:
    """Tests that neither stack file builds the volume: objinsync sidecars deliver the DAGs."""

    @pytest.mark.parametrize("stack_fixture", ["dev_plan", "prod_plan"], ids=["dev", "prod"])
    def test_no_efs_without_the_option(self, request, stack_fixture):
        """No EFS resource, no DagVolume, no claim in the values, and every DAG reader keeps its sidecar."""
        plan = request.getfixturevalue(stack_fixture)
        assert [r.name for r in plan.resources if r.type.startswith(EFS_STATE) or r.type == COMPONENT] == []
        assert plan.of_type("kubernetes:core/v1:PersistentVolumeClaim") == []
        values = chart_values(plan)
        assert "dags" not in values
        assert [values[c]["extraInitContainers"][2]["name"] for c in DAG_COMPONENTS] == ["dags-sync"] * 3

    def test_reader_trust_has_no_writer_by_default(self, prod_plan):
        """Without the option, the DAG reader role does not trust the writer's service account."""
        assert "system:serviceaccount:airflow:airflow-dags-sync" not in trust_subjects(prod_plan, "airflow-prod-dags-reader")


class TestFileSystem:
    """Tests the EFS file system, its network reach and its access point."""

    def test_encrypted_with_its_own_key(self, plan):
        """Encrypted with a rotating key that belongs to DagVolume, elastic throughput."""
        [volume] = plan.of_type(COMPONENT)
        key = part(plan, "key")
        assert part(plan, "fs").inputs == {"encrypted": True, "kmsKeyId": key.outputs["arn"], "throughputMode": "elastic",
                                           "tags": {"Name": VOLUME}}
        assert (key.parent, key.inputs["enableKeyRotation"], key.inputs["description"]) == (volume.urn, True, "EFS copy of the DAGs")

    def test_copy_is_not_protected_but_its_key_is(self, plan):
        """The file system holds a copy of the bucket, so it is not protected; its key is, like every key in prod."""
        assert (part(plan, "fs").protect, part(plan, "key").protect) == (False, True)

    def test_policy_denies_plain_nfs(self, plan):
        """The file system policy denies every request made without TLS."""
        fs = part(plan, "fs")
        policy = part(plan, "tls-only")
        assert policy.inputs["fileSystemId"] == fs.id
        assert json.loads(policy.inputs["policy"])["Statement"] == [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Action": "*", "Resource": fs.outputs["arn"], "Principal": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]

    def test_one_mount_target_per_private_subnet(self, plan):
        """A mount target in each private subnet (one per zone), all behind the volume's security group."""
        fs, group = part(plan, "fs"), part(plan, "sg")
        targets = plan.of_type("aws:efs/mountTarget:MountTarget")
        assert sorted(t.inputs["subnetId"] for t in targets) == sorted(plan.outputs["privateSubnetIds"])
        assert len(plan.outputs["privateSubnetIds"]) == 3
        assert {(t.inputs["fileSystemId"], tuple(t.inputs["securityGroups"])) for t in targets} == {(fs.id, (group.id,))}

    def test_security_group_admits_only_nfs_from_the_cluster(self, plan):
        """The group has no inline rule and exactly one ingress rule: TCP 2049 from the cluster security group."""
        group = part(plan, "sg")
        cluster_group = plan.named("airflow-prod-cluster-eks").outputs["vpcConfig"]["clusterSecurityGroupId"]
        assert group.inputs == {"vpcId": plan.outputs["vpcId"], "description": "DAG volume: NFS from cluster nodes only"}
        rules = [r for r in plan.resources if r.type.startswith("aws:vpc/securityGroup") and r.inputs["securityGroupId"] == group.id]
        assert [(r.type, r.inputs) for r in rules] == [("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {
            "securityGroupId": group.id, "referencedSecurityGroupId": cluster_group, "ipProtocol": "tcp", "fromPort": 2049,
            "toPort": 2049, "description": "NFS from the EKS cluster"})]

    def test_access_point_writes_as_airflow(self, plan):
        """Every client acts as uid 50000 (Airflow's user), gid 0, rooted in /dags created 0755 for that user."""
        point = part(plan, "access-point")
        assert point.inputs == {"fileSystemId": part(plan, "fs").id, "posixUser": {"uid": 50000, "gid": 0},
                                "rootDirectory": {"path": "/dags", "creationInfo": {"ownerUid": 50000, "ownerGid": 0, "permissions": "0755"}}}


class TestKubernetesVolume:
    """Tests the PersistentVolume and the claim the Airflow pods mount."""

    def test_persistent_volume_is_the_access_point(self, plan):
        """ReadWriteMany through the EFS CSI driver, volumeHandle <fs id>::<access point id>, retained, no storage class."""
        volume = part(plan, "pv")
        assert volume.inputs["metadata"] == {"name": f"{VOLUME}-dags"}
        assert volume.inputs["spec"] == {
            "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"], "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "", "csi": {"driver": "efs.csi.aws.com",
                                            "volumeHandle": f"{part(plan, 'fs').id}::{part(plan, 'access-point').id}"}}

    def test_claim_binds_the_volume_in_airflow(self, plan):
        """The claim airflow-dags lives in namespace airflow and binds exactly that volume, ReadWriteMany."""
        claim = part(plan, "claim")
        assert claim.inputs["metadata"] == {"name": "airflow-dags", "namespace": "airflow"}
        assert claim.inputs["spec"] == {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": f"{VOLUME}-dags",
                                        "resources": {"requests": {"storage": "5Gi"}}}

    @pytest.mark.parametrize("suffix", ["pv", "claim"], ids=["volume", "claim"])
    def test_created_after_the_driver_and_mount_targets(self, plan, suffix):
        """The volume and claim wait for the CSI add-on and every mount target, so pods never mount a half-made volume."""
        needed = {part(plan, "efs-csi").urn, *(t.urn for t in plan.of_type("aws:efs/mountTarget:MountTarget"))}
        assert needed <= set(part(plan, suffix).dependencies)


class TestWriter:
    """Tests the single objinsync Deployment that fills the volume."""

    def test_exactly_one_replica_recreated(self, plan):
        """One writer, replaced by Recreate, so two never race over the same files."""
        writer = part(plan, "writer")
        assert writer.inputs["metadata"] == {"name": "airflow-dags-sync", "namespace": "airflow"}
        assert (writer.inputs["spec"]["replicas"], writer.inputs["spec"]["strategy"]) == (1, {"type": "Recreate"})

    def test_runs_objinsync_as_a_daemon_into_the_claim(self, plan):
        """objinsync pulls teams/ every 30 s (no --once) into /dags, the claim's mount, with the pinned image."""
        pod = part(plan, "writer").inputs["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["args"] == ["pull", "--interval", "30s", "--status-addr", ":8087", "--exclude", "**/__pycache__/**",
                                     "--exclude", "**/.dagtool-manifest.json", f"s3://{plan.outputs['dagBucket']}/teams", "/dags"]
        assert "--once" not in container["args"]
        assert container["image"] == stack_config("prod")["airflow-platform:airflow"]["dagSync"]["image"]
        assert container["volumeMounts"] == [{"name": "dags", "mountPath": "/dags"}]
        assert pod["volumes"] == [{"name": "dags", "persistentVolumeClaim": {"claimName": "airflow-dags"}}]

    def test_interval_follows_dag_sync_config(self, plan_with):
        """dagSync.intervalSeconds 90 makes the writer sync every 90 s, still as a daemon."""
        changes = efs_changes()
        changes["airflow-platform:airflow"]["dagSync"]["intervalSeconds"] = 90
        [container] = part(plan_with("prod", changes), "writer").inputs["spec"]["template"]["spec"]["containers"]
        assert container["args"][:3] == ["pull", "--interval", "90s"]
        assert "--once" not in container["args"]

    def test_credentials_come_from_the_service_account(self, plan):
        """The pod runs as airflow-dags-sync, annotated with the DAG reader role; the container sets no role of its own."""
        pod = part(plan, "writer").inputs["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "airflow-dags-sync"
        assert part(plan, "writer-account").inputs["metadata"] == {
            "name": "airflow-dags-sync", "namespace": "airflow", "annotations": {"eks.amazonaws.com/role-arn": plan.outputs["dagReaderRoleArn"]}}
        assert pod["containers"][0]["env"] == [{"name": "AWS_REGION", "value": "eu-west-1"}]

    def test_reader_role_trusts_the_writer_too(self, plan):
        """The DAG reader role adds the writer's account to the DAG readers, which still sync the shared modules."""
        assert trust_subjects(plan, "airflow-prod-dags-reader") == [
            "system:serviceaccount:airflow:airflow-dag-processor", "system:serviceaccount:airflow:airflow-triggerer",
            "system:serviceaccount:airflow:airflow-worker", "system:serviceaccount:airflow:airflow-dags-sync"]


class TestCsiDriver:
    """Tests the EFS CSI add-on and its own IRSA role."""

    def test_addon_uses_its_own_role(self, plan):
        """aws-efs-csi-driver on the cluster, with the DagVolume's role for its controller."""
        assert part(plan, "efs-csi").inputs == {
            "clusterName": "airflow-prod", "addonName": "aws-efs-csi-driver", "serviceAccountRoleArn": part(plan, "efs-csi-role").outputs["arn"],
            "resolveConflictsOnCreate": "OVERWRITE", "resolveConflictsOnUpdate": "PRESERVE"}

    def test_addon_waits_for_the_nodes(self, plan):
        """Its controller is a Deployment, so the add-on is created after the system node group, like coredns."""
        groups = {g.urn for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")}
        assert len(groups) == 1 and groups <= set(part(plan, "efs-csi").dependencies)

    def test_addon_version_can_be_pinned(self, plan_with):
        """cluster.addonVersions.efsCsiDriver pins the add-on like the others."""
        changes = efs_changes()
        cluster = stack_config("prod")["airflow-platform:cluster"]
        changes["airflow-platform:cluster"] = {**cluster, "addonVersions": {"efsCsiDriver": "v2.1.4-eksbuild.1"}}
        assert part(plan_with("prod", changes), "efs-csi").inputs["addonVersion"] == "v2.1.4-eksbuild.1"

    def test_role_trusts_only_the_controller(self, plan):
        """Only kube-system:efs-csi-controller-sa, through the cluster's OIDC provider, may assume it."""
        host = plan.named("airflow-prod-cluster-oidc").inputs["url"].removeprefix("https://")
        [trust] = json.loads(part(plan, "efs-csi-role").inputs["assumeRolePolicy"])["Statement"]
        assert trust == {
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": plan.outputs["oidcProviderArn"]},
            "Condition": {"StringEquals": {f"{host}:aud": "sts.amazonaws.com", f"{host}:sub": "system:serviceaccount:kube-system:efs-csi-controller-sa"}}}

    def test_role_has_the_efs_driver_policy_only(self, plan):
        """The role gets AWS's EFS CSI driver policy and nothing else; it is not the EBS CSI role."""
        role = part(plan, "efs-csi-role")
        attached = [a.inputs["policyArn"] for a in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if a.inputs["role"] == role.id]
        assert attached == ["arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"]
        assert [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id] == []
        assert role.id != plan.named("airflow-prod-cluster-ebs-csi-role").id


class TestChartValues:
    """Tests that the Airflow release mounts the claim instead of running objinsync in every pod."""

    def test_dags_from_the_existing_claim(self, plan):
        """dags.persistence uses the claim airflow-dags, and the release waits for the claim."""
        assert chart_values(plan)["dags"] == {"persistence": {"enabled": True, "existingClaim": "airflow-dags"}}
        assert part(plan, "claim").urn in plan.named("airflow-prod-airflow-release").dependencies

    @pytest.mark.parametrize("component", DAG_COMPONENTS, ids=DAG_COMPONENTS)
    def test_components_sync_only_the_shared_modules(self, plan, component):
        """No component syncs DAGs itself any more: only the shared/ prefix, into the plugins folder."""
        values = chart_values(plan)[component]
        assert [c["name"] for c in values["extraInitContainers"]] == ["shared-sync-init", "shared-sync"]
        assert values["extraVolumes"] == [{"name": "shared", "emptyDir": {}}]

    def test_api_server_syncs_nothing(self, plan):
        """The API server has no sync containers either way."""
        assert {"extraContainers", "extraInitContainers"}.isdisjoint(chart_values(plan)["apiServer"])

    def test_only_the_writer_syncs_teams(self, plan):
        """The bucket's teams/ prefix is mirrored by the writer Deployment alone."""
        bucket = plan.outputs["dagBucket"]
        users = [r.name for r in plan.resources if f"s3://{bucket}/teams" in json.dumps(r.redacted_inputs)]
        assert users == [f"{VOLUME}-writer"]


class TestProviders:
    """Tests that DagVolume creates everything through the program's own providers."""

    def test_aws_resources_use_the_tagging_provider(self, plan):
        """Every AWS resource of DagVolume goes through the one aws provider, like the rest of the program."""
        [provider] = plan.of_type("pulumi:providers:aws")
        [volume] = plan.of_type(COMPONENT)
        aws = [r for r in plan.descendants(volume) if r.type.startswith("aws:")]
        assert sorted(r.type for r in aws) == sorted([
            "aws:kms/key:Key", "aws:kms/alias:Alias", "aws:efs/fileSystem:FileSystem", "aws:efs/fileSystemPolicy:FileSystemPolicy",
            "aws:ec2/securityGroup:SecurityGroup", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            *["aws:efs/mountTarget:MountTarget"] * 3, "aws:efs/accessPoint:AccessPoint", "aws:iam/role:Role",
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:eks/addon:Addon"])
        assert [r.name for r in aws if not r.provider.startswith(provider.urn + "::")] == []

    def test_kubernetes_resources_use_the_cluster_provider(self, plan):
        """The volume, claim, account and writer go through the Cluster component's Kubernetes provider."""
        [provider] = plan.of_type("pulumi:providers:kubernetes")
        [volume] = plan.of_type(COMPONENT)
        k8s = [r for r in plan.descendants(volume) if r.type.startswith("kubernetes:")]
        assert sorted(r.name.removeprefix(f"{VOLUME}-") for r in k8s) == ["claim", "pv", "writer", "writer-account"]
        assert [r.name for r in k8s if not r.provider.startswith(provider.urn + "::")] == []
