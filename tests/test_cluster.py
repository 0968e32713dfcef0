"""Tests the Cluster component: private endpoint, encryption, logs, IRSA, node groups, add-ons, access, provider."""

from __future__ import annotations

import json

import pytest

from components.cluster import CONTROL_PLANE_LOG_TYPES, kubeconfig
from tools.offline import Plan

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def the(plan: Plan, typ: str):
    [resource] = plan.of_type(typ)
    return resource


def key_of(plan: Plan, component: str):
    return plan.named(f"{component}-key")


class TestEndpoint:
    """Tests who can reach the Kubernetes API."""

    def test_prod_endpoint_is_private_only(self, prod_plan):
        """Prod lists no public CIDR, so the endpoint is private and no public range is sent."""
        vpc = the(prod_plan, CLUSTER).inputs["vpcConfig"]
        assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, False)
        assert "publicAccessCidrs" not in vpc

    def test_dev_endpoint_public_only_to_listed_cidrs(self, dev_plan):
        """Dev opens the endpoint to the office range it lists, and to nothing else."""
        vpc = the(dev_plan, CLUSTER).inputs["vpcConfig"]
        assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"], vpc["publicAccessCidrs"]) == (True, True, ["203.0.113.0/24"])


    @pytest.mark.parametrize("stack_fixture", ["dev_plan", "prod_plan"], ids=["dev", "prod"])
    def test_control_plane_interfaces_in_their_own_subnets(self, request, stack_fixture):
        """EKS places the control plane's interfaces in the control-plane subnets, none of the nodes' and pods'."""
        plan = request.getfixturevalue(stack_fixture)
        subnets = the(plan, CLUSTER).inputs["vpcConfig"]["subnetIds"]
        assert subnets == plan.outputs["controlPlaneSubnetIds"] and not set(subnets) & set(plan.outputs["privateSubnetIds"])


class TestEncryptionAndLogs:
    """Tests envelope encryption and control-plane logs."""

    def test_secrets_encrypted_with_the_cluster_key(self, prod_plan):
        """Kubernetes secrets are envelope-encrypted with the component's own key, which rotates."""
        cluster = the(prod_plan, CLUSTER)
        key = key_of(prod_plan, "airflow-prod-cluster")
        assert cluster.inputs["encryptionConfig"] == {"provider": {"keyArn": key.outputs["arn"]}, "resources": ["secrets"]}
        assert (key.inputs["enableKeyRotation"], key.protect) == (True, True)

    def test_all_control_plane_logs_into_our_log_group(self, prod_plan):
        """All five log types go to a log group we create, encrypted with the cluster key and kept as configured."""
        cluster = the(prod_plan, CLUSTER)
        group = prod_plan.named("airflow-prod-cluster-logs")
        assert cluster.inputs["enabledClusterLogTypes"] == CONTROL_PLANE_LOG_TYPES == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
        assert group.inputs["name"] == "/aws/eks/airflow-prod/cluster"
        assert (group.inputs["retentionInDays"], group.inputs["kmsKeyId"]) == (365, key_of(prod_plan, "airflow-prod-cluster").outputs["arn"])
        assert group.urn in cluster.dependencies

    def test_key_policy_lets_logs_use_it_only_for_this_log_group(self, prod_plan):
        """CloudWatch Logs may use the key only with this cluster's log group as encryption context."""
        policy = json.loads(key_of(prod_plan, "airflow-prod-cluster").inputs["policy"])
        [logs] = [s for s in policy["Statement"] if s["Sid"] == "LogsEncryptControlPlaneLogGroup"]
        assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
        assert logs["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn":
                                                   "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/eks/airflow-prod/cluster"}}


class TestIrsa:
    """Tests the OIDC provider that lets pods assume IAM roles."""

    def test_oidc_provider_is_the_cluster_issuer(self, prod_plan):
        """The IAM OIDC provider is registered for the cluster's own issuer, for the STS audience."""
        cluster = the(prod_plan, CLUSTER)
        provider = prod_plan.named("airflow-prod-cluster-oidc")
        assert provider.inputs["url"] == cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
        assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]

    def test_ebs_csi_role_trusts_only_its_service_account(self, prod_plan):
        """The EBS CSI add-on's role can be assumed only by kube-system/ebs-csi-controller-sa."""
        addon = prod_plan.named("airflow-prod-cluster-aws-ebs-csi-driver")
        role = prod_plan.named("airflow-prod-cluster-ebs-csi-role")
        assert addon.inputs["serviceAccountRoleArn"] == role.outputs["arn"]
        [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        host = prod_plan.named("airflow-prod-cluster-oidc").inputs["url"].removeprefix("https://")
        assert statement["Condition"] == {"StringEquals": {f"{host}:aud": "sts.amazonaws.com",
                                                           f"{host}:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa"}}


class TestNodeGroups:
    """Tests the managed node groups."""

    @pytest.mark.parametrize("stack_fixture", ["dev_plan", "prod_plan"], ids=["dev", "prod"])
    def test_every_group_spans_every_private_subnet(self, request, stack_fixture):
        """The system group (the only one: Karpenter brings the rest) is placed in all private subnets, hence in every zone."""
        plan = request.getfixturevalue(stack_fixture)
        groups = plan.of_type(NODE_GROUP)
        assert [g.name.rsplit("-", 1)[1] for g in groups] == ["system"]
        for group in groups:
            assert group.inputs["subnetIds"] == plan.outputs["privateSubnetIds"]

    def test_prod_sizes_and_types_from_config(self, prod_plan):
        """Sizes, types and AMI type come from the stack file."""
        system = prod_plan.named("airflow-prod-cluster-system")
        assert system.inputs["scalingConfig"] == {"minSize": 3, "maxSize": 6, "desiredSize": 3}
        assert (system.inputs["instanceTypes"], system.inputs["amiType"]) == (["m6i.xlarge"], "AL2023_x86_64_STANDARD")
        assert system.inputs["labels"] == {"airflow-platform/pool": "system"}

    def test_graviton_types_get_the_arm_ami(self, plan_with):
        """A Graviton node group is given the ARM64 AMI type."""
        plan = plan_with("dev", {"airflow-platform:cluster": {"nodeGroups": {"system": {"instanceTypes": ["m7g.large", "c7g.large"]}}}})
        assert plan.named("airflow-dev-cluster-system").inputs["amiType"] == "AL2023_ARM_64_STANDARD"

    def test_root_volumes_encrypted_and_imds_locked(self, prod_plan):
        """Node volumes are gp3 encrypted with the cluster key; IMDSv2 with one hop keeps pods off the node role."""
        template = prod_plan.named("airflow-prod-cluster-system-lt")
        [mapping] = template.inputs["blockDeviceMappings"]
        assert mapping["ebs"] == {"volumeSize": 50, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true",
                                  "kmsKeyId": key_of(prod_plan, "airflow-prod-cluster").outputs["arn"]}
        assert template.inputs["metadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
        assert prod_plan.named("airflow-prod-cluster-system").inputs["launchTemplate"]["id"] == template.id

    def test_autoscaler_owns_desired_size(self, prod_plan):
        """The live size is left to the autoscaler: later runs do not reset the desired size."""
        for group in prod_plan.of_type(NODE_GROUP):
            assert group.ignore_changes == ["scalingConfig.desiredSize"]


class TestAddonsAndAccess:
    """Tests the EKS add-ons, admin access and the Kubernetes provider."""

    def test_core_addons_in_dependency_order(self, prod_plan):
        """Networking add-ons come before the node groups; coredns and EBS CSI after them."""
        addons = {a.inputs["addonName"]: a for a in prod_plan.of_type("aws:eks/addon:Addon")}
        assert sorted(addons) == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
        groups = {g.urn for g in prod_plan.of_type(NODE_GROUP)}
        for group in prod_plan.of_type(NODE_GROUP):
            assert {addons["vpc-cni"].urn, addons["kube-proxy"].urn} <= set(group.dependencies)
        assert groups <= set(addons["coredns"].dependencies) and groups <= set(addons["aws-ebs-csi-driver"].dependencies)

    def test_self_managed_addons_not_bootstrapped(self, prod_plan):
        """EKS does not install its unmanaged copies of the add-ons we manage."""
        assert the(prod_plan, CLUSTER).inputs["bootstrapSelfManagedAddons"] is False

    def test_pinned_addon_version(self, plan_with):
        """An add-on version pinned in config reaches the add-on."""
        plan = plan_with("dev", {"airflow-platform:cluster": {"addonVersions": {"coredns": "v1.11.4-eksbuild.2"}}})
        assert plan.named("airflow-dev-cluster-coredns").inputs["addonVersion"] == "v1.11.4-eksbuild.2"

    def test_admin_access_entries_from_config(self, prod_plan):
        """Each configured admin role gets an access entry with the cluster-admin policy, cluster-wide; nothing else does
        (Karpenter's nodes join through an entry of type EC2_LINUX, which takes no access policy)."""
        entries = [e for e in prod_plan.of_type("aws:eks/accessEntry:AccessEntry") if e.inputs.get("type") != "EC2_LINUX"]
        assert [e.inputs["principalArn"] for e in entries] == ["arn:aws:iam::123456789012:role/platform-admin",
                                                               "arn:aws:iam::123456789012:role/platform-oncall"]
        for association in prod_plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
            assert association.inputs["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
            assert association.inputs["accessScope"] == {"type": "cluster"}
        assert the(prod_plan, CLUSTER).inputs["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}

    def test_kubernetes_provider_uses_exec_auth(self, prod_plan):
        """The Kubernetes provider's kubeconfig points at the cluster and carries no token: it runs aws eks get-token."""
        [provider] = prod_plan.of_type("pulumi:providers:kubernetes")
        config = json.loads(provider.inputs["kubeconfig"])
        cluster = the(prod_plan, CLUSTER)
        assert config["clusters"][0]["cluster"]["server"] == cluster.outputs["endpoint"]
        [user] = config["users"]
        assert "token" not in user["user"]
        assert user["user"]["exec"]["args"] == ["eks", "get-token", "--cluster-name", "airflow-prod", "--region", "eu-west-1", "--output", "json"]


def test_kubeconfig_shape():
    """The kubeconfig names one cluster, context and user, all after the cluster."""
    config = json.loads(kubeconfig("c1", "https://e", "Q0E=", "us-east-2"))
    assert config["current-context"] == "c1"
    assert config["clusters"] == [{"name": "c1", "cluster": {"server": "https://e", "certificate-authority-data": "Q0E="}}]
    assert config["contexts"] == [{"name": "c1", "context": {"cluster": "c1", "user": "c1"}}]


class TestStorageClass:
    """Tests the cluster's default StorageClass and the EBS CSI driver's access to the key."""

    def test_encrypted_gp3_default(self, prod_plan):
        """gp3, encrypted with the cluster key, bound where the pod lands, the cluster's default."""
        [storage_class] = prod_plan.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
        assert storage_class.inputs["metadata"] == {"name": "gp3-encrypted",
                                                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
        assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com"
        assert storage_class.inputs["parameters"] == {"type": "gp3", "encrypted": "true", "kmsKeyId": key_of(prod_plan, "airflow-prod-cluster").outputs["arn"]}
        assert storage_class.inputs["volumeBindingMode"] == "WaitForFirstConsumer"

    def test_ebs_csi_may_use_the_cluster_key(self, prod_plan):
        """The driver's role may use the cluster key, and create grants only for AWS resources."""
        key = key_of(prod_plan, "airflow-prod-cluster").outputs["arn"]
        statements = json.loads(prod_plan.named("airflow-prod-cluster-ebs-csi-role-key").inputs["policy"])["Statement"]
        assert [s["Resource"] for s in statements] == [key, key]
        assert statements[1]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
