"""DAG volume (option `dagDelivery: efs`): one objinsync writer keeps an encrypted EFS volume in sync with the
DAG bucket, and every Airflow component mounts that volume through a ReadWriteMany claim.

Every component then sees exactly the same files at the same moment, where per-pod sidecars can differ by up
to a sync interval. The volume holds only a copy of the bucket, so it is neither backed up nor protected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, kms
from components.airflow_values import AIRFLOW_UID, DAGS, objinsync_container
from components.config import DagSyncConfig

NFS_PORT = 2049
CSI_DRIVER = "efs.csi.aws.com"
CSI_NAMESPACE, CSI_SERVICE_ACCOUNT = "kube-system", "efs-csi-controller-sa"
WRITER_SERVICE_ACCOUNT = "airflow-dags-sync"
CLAIM = "airflow-dags"
ROOT_DIRECTORY = "/dags"
MOUNT_PATH = "/dags"


@dataclass
class DagVolumeArgs:
    region: str
    partition: str
    account_id: str
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    cluster_oidc: iam.OidcIssuer
    namespace: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    reader_role_arn: pulumi.Input[str]
    dag_sync: DagSyncConfig
    protect: bool
    # The CSI controller is a Deployment: it needs nodes, like the cluster's coredns and EBS CSI add-ons.
    cluster_nodes: Sequence[pulumi.Resource] = ()
    csi_driver_version: Optional[str] = None


class DagVolume(pulumi.ComponentResource):
    claim_name: pulumi.Output[str]
    file_system_id: pulumi.Output[str]

    def __init__(self, name: str, args: DagVolumeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:DagVolume", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = kms.Account(args.partition, args.account_id)
        efs = kms.service_host("elasticfilesystem", args.region)
        key = kms.customer_managed_key(name, "EFS copy of the DAGs", self, args.protect, account, [
            # Through EFS only: it encrypts the file system for whoever creates it, then through its own grant.
            kms.through_service("AccountUsesThroughEfs", account, efs, kms.STORAGE_ACTIONS),
            kms.grants_through_service("AccountGrantsThroughEfs", account, efs)])
        file_system = aws.efs.FileSystem(f"{name}-fs", encrypted=True, kms_key_id=key.arn, throughput_mode="elastic",
                                         tags={"Name": name}, opts=child)
        self.file_system_id = file_system.id
        aws.efs.FileSystemPolicy(f"{name}-tls-only", file_system_id=file_system.id, policy=iam.document([{
            "sid": "DenyInsecureTransport", "effect": "Deny", "actions": ["*"], "resources": [file_system.arn],
            "principals": [{"type": "*", "identifiers": ["*"]}],
            "conditions": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}],
        }], self), opts=child)

        security_group = aws.ec2.SecurityGroup(f"{name}-sg", vpc_id=args.vpc_id, description="DAG volume: NFS from cluster nodes only", opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster", security_group_id=security_group.id, referenced_security_group_id=args.client_security_group_id,
            ip_protocol="tcp", from_port=NFS_PORT, to_port=NFS_PORT, description="NFS from the EKS cluster", opts=child)
        mount_targets = [aws.efs.MountTarget(f"{name}-mount-{index}", file_system_id=file_system.id, subnet_id=subnet,
                                             security_groups=[security_group.id], opts=child)
                         for index, subnet in enumerate(args.subnet_ids)]
        # Files are written as Airflow's own user, into a directory the access point creates for it.
        access_point = aws.efs.AccessPoint(
            f"{name}-access-point", file_system_id=file_system.id, posix_user={"uid": AIRFLOW_UID, "gid": 0},
            root_directory={"path": ROOT_DIRECTORY, "creation_info": {"owner_uid": AIRFLOW_UID, "owner_gid": 0, "permissions": "0755"}},
            opts=child)

        csi_role = aws.iam.Role(f"{name}-efs-csi-role", assume_role_policy=iam.irsa_trust(
            args.cluster_oidc, CSI_NAMESPACE, [CSI_SERVICE_ACCOUNT], self), opts=child)
        iam.attach_managed_policies(csi_role, args.partition, ["service-role/AmazonEFSCSIDriverPolicy"], self, f"{name}-efs-csi-role")
        driver = aws.eks.Addon(f"{name}-efs-csi", cluster_name=args.cluster_name, addon_name="aws-efs-csi-driver",
                               addon_version=args.csi_driver_version, service_account_role_arn=csi_role.arn,
                               resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="PRESERVE",
                               opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.cluster_nodes)))

        k8s_child = pulumi.ResourceOptions(parent=self, depends_on=[driver, *mount_targets])
        volume = k8s.core.v1.PersistentVolume(f"{name}-pv", metadata={"name": f"{name}-dags"}, spec={
            "capacity": {"storage": "5Gi"},  # EFS does not enforce a size; Kubernetes requires one
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "csi": {"driver": CSI_DRIVER, "volumeHandle": pulumi.Output.concat(file_system.id, "::", access_point.id)},
        }, opts=k8s_child)
        claim = k8s.core.v1.PersistentVolumeClaim(f"{name}-claim", metadata={"name": CLAIM, "namespace": args.namespace}, spec={
            "accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": volume.metadata["name"],
            "resources": {"requests": {"storage": "5Gi"}},
        }, opts=k8s_child)
        self.claim_name = claim.metadata["name"]

        account = k8s.core.v1.ServiceAccount(f"{name}-writer-account", metadata={
            "name": WRITER_SERVICE_ACCOUNT, "namespace": args.namespace,
            "annotations": {"eks.amazonaws.com/role-arn": args.reader_role_arn}}, opts=child)
        labels = {"app.kubernetes.io/name": "dags-sync", "app.kubernetes.io/part-of": "airflow-platform"}
        k8s.apps.v1.Deployment(f"{name}-writer", metadata={"name": "airflow-dags-sync", "namespace": args.namespace}, spec={
            # One writer: a second would race the first over the same files.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": account.metadata["name"],
                "containers": pulumi.Output.from_input(args.bucket_name).apply(lambda bucket: [
                    objinsync_container(args.dag_sync, DAGS, bucket, args.region, once=False, path=MOUNT_PATH)]),
                "volumes": [{"name": "dags", "persistentVolumeClaim": {"claimName": claim.metadata["name"]}}],
            }},
        }, opts=child)
        self.register_outputs({"claimName": self.claim_name, "fileSystemId": self.file_system_id})
