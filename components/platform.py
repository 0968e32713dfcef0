"""Platform: one environment of the Airflow platform, composed from one component per concern.

Every AWS resource is created through one explicit provider whose default tags carry environment, owner and
managed-by, so no resource can miss them and no resource falls back to an untagged default provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pulumi
import pulumi_aws as aws
from pydantic import SecretStr

from components.airflow import Airflow, AirflowArgs
from components.airflow_access import AirflowAccess, AirflowAccessArgs
from components.alarms import Alarms, AlarmsArgs
from components.audit import DagAudit, DagAuditArgs
from components.autoscaling import Keda, KedaArgs
from components.broker import Broker, BrokerArgs
from components.cluster import STORAGE_CLASS, Cluster, ClusterArgs
from components.config import PlatformConfig
from components.dag_storage import DagStorage, DagStorageArgs
from components.dag_volume import WRITER_SERVICE_ACCOUNT, DagVolumeArgs
from components.entry import Entry, EntryArgs
from components.flow_logs import FlowLogs, FlowLogsArgs
from components.karpenter import Karpenter, KarpenterArgs
from components.lb_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.metadata_db import MetadataDatabase, MetadataDatabaseArgs
from components.names import AIRFLOW_NAMESPACE, DAG_READERS, SERVICE_ACCOUNTS
from components.network import Network, NetworkArgs
from components.network_policies import NetworkPolicies, NetworkPoliciesArgs, address_ranges
from components.observability import Observability, ObservabilityArgs
from components.observability_values import KPS_RELEASE
from components.task_pods import TaskPods, TaskPodsArgs



def _secret(value: Optional[SecretStr]) -> Optional[pulumi.Output[str]]:
    """A secret config value as a Pulumi secret, the only form in which it leaves the config."""
    return pulumi.Output.secret(value.get_secret_value()) if value is not None else None


# What the URL outputs say when the stack has no entry.
NOT_EXPOSED = "not exposed: set entry"

# The company notifier: dagtool installs it for teams' checks, the platform publishes the same file for Airflow.
NOTIFIER = Path(__file__).resolve().parent.parent / "dagtool" / "airflow_platform_notify.py"


class Platform(pulumi.ComponentResource):
    def __init__(self, name: str, config: PlatformConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Platform", name, None, opts)
        self.config = config
        aws_provider = aws.Provider(f"{name}-aws", region=config.region, default_tags={"tags": config.default_tags},
                                    opts=pulumi.ResourceOptions(parent=self))
        # Children inherit the provider, and invokes made with parent=self use it too.
        child = pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider})
        invoke = pulumi.InvokeOptions(parent=self, provider=aws_provider)
        partition = aws.get_partition(opts=invoke).partition
        account_id = aws.get_caller_identity(opts=invoke).account_id
        protect = bool(config.protect_stateful_resources)

        net = config.network
        self.network = Network(f"{name}-network", NetworkArgs(
            region=config.region, zone_count=config.zones, nat_gateways=net.nat_gateways, vpc_cidr=net.vpc_cidr,
            existing_vpc_id=net.existing_vpc_id, existing_private_subnet_ids=list(net.existing_private_subnet_ids),
            existing_control_plane_subnet_ids=list(net.existing_control_plane_subnet_ids),
            existing_entry_subnet_ids=list(net.existing_entry_subnet_ids)), opts=child)
        # The VPC if it is the platform's; an existing VPC's subnets the platform was given otherwise (flow_logs.py says why).
        owned_vpc = net.existing_vpc_id is None
        self.flow_logs = FlowLogs(f"{name}-flow-logs", FlowLogsArgs(
            environment_name=name, partition=partition, region=config.region, account_id=account_id,
            retention_days=net.flow_log_retention_days, protect=protect, vpc_id=self.network.vpc_id if owned_vpc else None,
            subnets={} if owned_vpc else self._recorded_subnets(net)), opts=child)

        self.cluster = Cluster(f"{name}-cluster", ClusterArgs(
            cluster_name=name, config=config.cluster, region=config.region, partition=partition, account_id=account_id,
            vpc_id=self.network.vpc_id, private_subnet_ids=self.network.private_subnet_ids,
            control_plane_subnet_ids=self.network.control_plane_subnet_ids, protect=protect), opts=child)

        efs = config.airflow.dag_delivery == "efs"
        # Who reads the bucket: the objinsync containers of every DAG-reading pod (the shared modules, and the DAGs
        # unless the EFS writer syncs those).
        dag_syncers = [SERVICE_ACCOUNTS[c] for c in DAG_READERS] + ([WRITER_SERVICE_ACCOUNT] if efs else [])
        self.dag_storage = DagStorage(f"{name}-dags", DagStorageArgs(
            environment_name=name, region=config.region, partition=partition, account_id=account_id, teams=config.teams,
            noncurrent_version_days=config.dag_storage.noncurrent_version_days, log_retention_days=config.airflow.log_retention_days,
            cluster_oidc=self.cluster.oidc, reader_namespace=AIRFLOW_NAMESPACE, reader_service_accounts=dag_syncers, protect=protect,
            github_oidc_provider_arn=config.dag_storage.github_oidc_provider_arn,
            shared_files={NOTIFIER.name: NOTIFIER}), opts=child)
        self.dag_audit = DagAudit(f"{name}-dag-audit", DagAuditArgs(
            partition=partition, region=config.region, account_id=account_id, bucket_arn=self.dag_storage.bucket_arn,
            retention_days=config.dag_storage.audit_retention_days, protect=protect), opts=child)

        self.database = MetadataDatabase(f"{name}-db", MetadataDatabaseArgs(
            config=config.database, partition=partition, region=config.region, account_id=account_id, vpc_id=self.network.vpc_id,
            subnet_ids=self.network.private_subnet_ids, client_security_group_id=self.cluster.security_group_id, protect=protect), opts=child)

        self.alarms = Alarms(f"{name}-alarms", AlarmsArgs(
            thresholds=config.alarms, instance_class=config.database.instance_class, db_identifier=self.database.identifier,
            partition=partition, account_id=account_id, protect=protect,
            webhook_url=_secret(config.alarm_webhook_url)), opts=child)

        self.broker: Optional[Broker] = None
        if config.broker.mode == "elasticache":
            self.broker = Broker(f"{name}-broker", BrokerArgs(
                config=config.broker, zones=self.network.zones, vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids, client_security_group_id=self.cluster.security_group_id,
                region=config.region, partition=partition, account_id=account_id, protect=protect), opts=child)

        self._airflow(name, config, partition, account_id, protect, child)

        self.entry: Optional[Entry] = None
        if config.entry is not None:
            # After the controller (the binding CRD) and the releases whose Services the load balancer sends to.
            self.entry = Entry(f"{name}-entry", EntryArgs(
                config=config.entry, environment_name=name, vpc_id=self.network.vpc_id,
                entry_subnet_ids=self.network.entry_subnet_ids, public_subnet_ids=self.network.public_subnet_ids,
                cluster_security_group_id=self.cluster.security_group_id, provider=self.cluster.provider,
                airflow_namespace=self.airflow.namespace, monitoring_namespace=self.observability.namespace,
                lb_controller=self.lb_controller.release, services=[self.airflow.release, self.observability.stack],
                protect=protect), opts=child)

        control_plane_cidrs, load_balancer_cidrs = address_ranges(config, self.network, invoke)
        self.network_policies = NetworkPolicies(f"{name}-network-policies", NetworkPoliciesArgs(
            provider=self.cluster.provider, airflow_namespace=self.airflow.namespace, task_namespace=self.task_pods.namespace,
            monitoring_namespace=self.observability.namespace, keda=self.keda, karpenter=self.karpenter,
            control_plane_cidrs=control_plane_cidrs, load_balancer_cidrs=load_balancer_cidrs,
            pgbouncer=config.airflow.pgbouncer.enabled, in_cluster_broker=config.broker.mode == "in-cluster"), opts=child)
        self.register_outputs({})

    def _recorded_subnets(self, net) -> dict[str, pulumi.Input[str]]:
        """An existing VPC's subnets the platform uses, by flow log name: the private ones, and the edge ones it was given."""
        zones = [zone[-1] for zone in self.network.zones]
        found: dict[str, pulumi.Input[str]] = {f"subnet-{zone}": s for zone, s in zip(zones, self.network.private_subnet_ids)}
        for kind, given, ids in (("control-plane", net.existing_control_plane_subnet_ids, self.network.control_plane_subnet_ids),
                                 ("entry", net.existing_entry_subnet_ids, self.network.entry_subnet_ids)):
            if given:
                found.update({f"{kind}-subnet-{zone}": s for zone, s in zip(zones, ids)})
        return found

    def _airflow(self, name: str, config: PlatformConfig, partition: str, account_id: str, protect: bool,
                 child: pulumi.ResourceOptions) -> None:
        """The Kubernetes side: observability, Karpenter, the load balancer controller, KEDA, Airflow's AWS access, the Airflow
        release and the task-pod namespace."""
        provider = self.cluster.provider
        self.observability = Observability(f"{name}-observability", ObservabilityArgs(
            config=config, provider=provider, storage_class=STORAGE_CLASS, depends_on=[self.cluster.storage_class]), opts=child)
        repositories = config.chart_repositories
        images = config.images.pinned()
        self.karpenter = Karpenter(f"{name}-karpenter", KarpenterArgs(
            config=config.karpenter, cluster_name=name, cluster_endpoint=self.cluster.endpoint,
            cluster_security_group_id=self.cluster.security_group_id, cluster_oidc=self.cluster.oidc, volume_key_arn=self.cluster.key.arn,
            private_subnet_ids=self.network.private_subnet_ids, zones=self.network.zones, partition=partition, region=config.region,
            account_id=account_id, worker_grace_seconds=config.airflow.worker_grace_seconds, provider=provider,
            node_tags=config.default_tags, protect=protect, monitoring_labels={"release": KPS_RELEASE}, monitoring=[self.observability.stack],
            crd_repository=repositories.karpenter_crd, repository=repositories.karpenter, images=images), opts=child)
        self.lb_controller = LoadBalancerController(f"{name}-lb-controller", LoadBalancerControllerArgs(
            cluster_name=name, region=config.region, partition=partition, account_id=account_id, vpc_id=self.network.vpc_id,
            load_balancer_subnet_ids=self.network.entry_subnet_ids, cluster_oidc=self.cluster.oidc, provider=provider,
            monitoring_labels={"release": KPS_RELEASE}, monitoring=[self.observability.stack],
            repository=repositories.aws_load_balancer_controller, images=images), opts=child)
        self.keda = Keda(f"{name}-keda", KedaArgs(provider=provider, repository=repositories.keda, images=images), opts=child)
        self.airflow_access = AirflowAccess(f"{name}-access", AirflowAccessArgs(
            region=config.region, partition=partition, account_id=account_id, cluster_oidc=self.cluster.oidc,
            bucket_arn=self.dag_storage.bucket_arn, bucket_key_arn=self.dag_storage.key_arn,
            secrets_prefix=config.airflow.secrets_prefix, protect=protect,
            slack_webhook_url=_secret(config.slack_webhook_url)), opts=child)
        dag_volume = None
        if config.airflow.dag_delivery == "efs":
            dag_volume = DagVolumeArgs(
                region=config.region, partition=partition, account_id=account_id, vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids,
                client_security_group_id=self.cluster.security_group_id, cluster_name=self.cluster.name, cluster_oidc=self.cluster.oidc,
                namespace=AIRFLOW_NAMESPACE, bucket_name=self.dag_storage.bucket_name, reader_role_arn=self.dag_storage.reader_role_arn,
                dag_sync=config.airflow.dag_sync, protect=protect, cluster_nodes=self.cluster.node_groups,
                csi_driver_version=config.cluster.addon_versions.efs_csi_driver)
        self.airflow = Airflow(f"{name}-airflow", AirflowArgs(
            config=config, provider=provider, keda=self.keda.release, region=config.region,
            dag_bucket=self.dag_storage.bucket_name, dag_reader_role_arn=self.dag_storage.reader_role_arn,
            component_role_arns=self.airflow_access.role_arns, db_address=self.database.address, db_password=self.database.password,
            broker_address=self.broker.address if self.broker else None, broker_auth_token=self.broker.auth_token if self.broker else None,
            dag_volume=dag_volume, node_pools=self.karpenter.node_pools), opts=child)
        self.task_pods = TaskPods(f"{name}-task-pods", TaskPodsArgs(
            config=config.airflow.task_pods, launcher_namespace=AIRFLOW_NAMESPACE,
            # Workers launch pods; the triggerer watches them for deferred KubernetesPodOperator tasks.
            launcher_service_accounts=[SERVICE_ACCOUNTS["workers"], SERVICE_ACCOUNTS["triggerer"]], provider=provider), opts=child)

    def outputs(self) -> dict[str, object]:
        """The stack outputs: what a person or another stack needs, and nothing secret."""
        return {
            "region": self.config.region,
            "zones": self.network.zones,
            "vpcId": self.network.vpc_id,
            "privateSubnetIds": self.network.private_subnet_ids,
            "controlPlaneSubnetIds": self.network.control_plane_subnet_ids,
            "entrySubnetIds": self.network.entry_subnet_ids,
            "clusterName": self.cluster.name,
            "clusterEndpoint": self.cluster.endpoint,
            "oidcProviderArn": self.cluster.oidc.provider_arn,
            "kubeconfig": self.cluster.kubeconfig,
            "dagBucket": self.dag_storage.bucket_name,
            "dagReaderRoleArn": self.dag_storage.reader_role_arn,
            "teamRoleArns": self.dag_storage.team_role_arns,
            "databaseAddress": self.database.address,
            "alarmTopicArn": self.alarms.topic_arn,
            "brokerAddress": self.broker.address if self.broker else "in-cluster",
            "airflowNamespace": self.airflow.namespace,
            "airflowRoleArns": self.airflow_access.role_arns,
            "taskPodsNamespace": self.task_pods.namespace,
            "monitoringNamespace": self.observability.namespace,
            "airflowUrl": self.entry.airflow_url if self.entry else NOT_EXPOSED,
            "grafanaUrl": self.entry.grafana_url if self.entry else NOT_EXPOSED,
        }
