"""Karpenter: the nodes under the Celery workers and the task pods, launched when pods are pending and removed when not
needed, with its IAM, its interruption queue, its two charts and the NodePools of node_pools.py.

The controller's role is an IRSA role, like every other pod role of the platform: the cluster already has its OIDC
provider, every trust the policy pack reviews has that one shape, and EKS Pod Identity would add an agent DaemonSet
for one role. The nodes get a role of their own with an EC2_LINUX access entry (the system node group's role has the
entry EKS made for it, and two entries cannot share a principal).

Spot interruption warnings, rebalance recommendations, instance state changes and scheduled health events reach the
controller through an SQS queue EventBridge alone may write to, so it drains a node before EC2 takes it away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, karpenter_iam, kms, node_pools
from components.charts import KARPENTER, KARPENTER_CRD, release_source
from components.helm_values import merge_maps
from components.images import IMAGES, ImagePins, image_values
from components.cluster import NODE_POLICIES  # what any EKS node needs; Karpenter's nodes get the same, on a role of their own
from components.config.karpenter import KarpenterConfig
from components.names import POOL_LABEL
from components.task_pods import POD_SECURITY_LABELS

NAMESPACE = "karpenter"
SERVICE_ACCOUNT = "karpenter"
# EventBridge events Karpenter acts on: name -> (source, detail-type).
INTERRUPTION_EVENTS = {
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "scheduled-change": ("aws.health", "AWS Health Event"),
}
# Karpenter reads a message within seconds; one older than its event is of no use (its documentation's 300 s).
QUEUE_RETENTION_SECONDS = 300
EVENTS_SERVICE = "events.amazonaws.com"


@dataclass
class KarpenterArgs:
    config: KarpenterConfig
    cluster_name: str
    cluster_endpoint: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    cluster_oidc: iam.OidcIssuer
    volume_key_arn: pulumi.Input[str]        # the cluster key, which encrypts node volumes
    private_subnet_ids: Sequence[pulumi.Input[str]]
    zones: pulumi.Input[Sequence[str]]
    partition: str
    region: str
    account_id: str
    worker_grace_seconds: int
    provider: k8s.Provider
    node_tags: dict[str, str]                # the platform's tags, on every instance and volume
    protect: bool
    monitoring_labels: dict[str, str] = field(default_factory=dict)  # what the stack's Prometheus selects ServiceMonitors by
    # The release that installs the ServiceMonitor CRD: the chart renders its ServiceMonitor only once that API exists.
    monitoring: Sequence[pulumi.Resource] = ()
    crd_repository: str = KARPENTER_CRD.repository
    repository: str = KARPENTER.repository
    images: ImagePins = field(default_factory=lambda: IMAGES)  # the stack's pinned images (config.images)


def karpenter_values(args: KarpenterArgs, controller_role_arn: pulumi.Input[str], queue_name: pulumi.Input[str]) -> dict:
    cfg = args.config
    resources = {"cpu": f"{cfg.controller_cpu_millicores}m", "memory": f"{cfg.controller_memory_mib}Mi"}
    return merge_maps({
        "settings": {"clusterName": args.cluster_name, "clusterEndpoint": args.cluster_endpoint, "interruptionQueue": queue_name},
        "serviceAccount": {"name": SERVICE_ACCOUNT, "annotations": {"eks.amazonaws.com/role-arn": controller_role_arn}},
        # Two replicas (leader election) on the system nodes; the chart keeps them off Karpenter's own nodes
        # (karpenter.sh/nodepool DoesNotExist), one per host and zone, and gives them a PDB of maxUnavailable 1.
        "replicas": 2,
        "nodeSelector": {"kubernetes.io/os": "linux", POOL_LABEL: "system"},
        "controller": {"resources": {"requests": resources, "limits": {"memory": resources["memory"]}}},
        "serviceMonitor": {"enabled": True, "additionalLabels": dict(args.monitoring_labels)},
    }, image_values(KARPENTER.name, args.images))


class Karpenter(pulumi.ComponentResource):
    node_role: aws.iam.Role
    controller_role: aws.iam.Role
    queue: aws.sqs.Queue

    def __init__(self, name: str, args: KarpenterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Karpenter", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        child = pulumi.ResourceOptions(parent=self)
        scope = karpenter_iam.ControllerScope(args.partition, args.region, args.account_id, args.cluster_name)

        self.node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=iam.service_trust("ec2.amazonaws.com", self), opts=child)
        iam.attach_managed_policies(self.node_role, args.partition, NODE_POLICIES, self, f"{name}-node-role")
        node_access = aws.eks.AccessEntry(f"{name}-node-access", cluster_name=args.cluster_name, principal_arn=self.node_role.arn,
                                          type="EC2_LINUX", opts=child)

        rules = {event: aws.cloudwatch.EventRule(
            f"{name}-{event}", description=f"{detail} -> Karpenter's interruption queue",
            event_pattern=pulumi.Output.json_dumps({"source": [source], "detail-type": [detail]}), opts=child)
            for event, (source, detail) in INTERRUPTION_EVENTS.items()}
        # Before the queue's key: its policy names the role.
        self.controller_role = aws.iam.Role(
            f"{name}-controller-role", assume_role_policy=iam.irsa_trust(args.cluster_oidc, NAMESPACE, [SERVICE_ACCOUNT], self), opts=child)
        self.queue_key = kms.customer_managed_key(f"{name}-queue", "Karpenter's interruption queue", self, args.protect,
                                                  kms.Account(args.partition, args.account_id),
                                                  self._queue_key_usage(args, list(rules.values())))
        self.queue = aws.sqs.Queue(f"{name}-queue", name=f"{args.cluster_name}-karpenter", message_retention_seconds=QUEUE_RETENTION_SECONDS,
                                   kms_master_key_id=self.queue_key.arn, kms_data_key_reuse_period_seconds=300, opts=child)
        aws.sqs.QueuePolicy(f"{name}-queue-policy", queue_url=self.queue.url,
                            policy=self._queue_policy(self.queue.arn, list(rules.values())), opts=child)
        for event, rule in rules.items():
            aws.cloudwatch.EventTarget(f"{name}-{event}-target", rule=rule.name, arn=self.queue.arn, target_id="KarpenterInterruptionQueue",
                                       opts=child)

        aws.iam.RolePolicy(f"{name}-controller-policy", role=self.controller_role.id, policy=iam.document(
            karpenter_iam.controller_statements(scope, self.node_role.arn, self.queue.arn, args.volume_key_arn, self.queue_key.arn), self),
            opts=child)

        # Where Karpenter launches nodes: the private subnets, with the cluster's security group (tags work on
        # resources this program did not create too, as in an existing VPC).
        tagged = [*(("subnet", index, subnet) for index, subnet in enumerate(args.private_subnet_ids)),
                  ("security-group", 0, args.cluster_security_group_id)]
        for kind, index, resource_id in tagged:
            aws.ec2.Tag(f"{name}-discovery-{kind}-{index}", resource_id=resource_id, key=node_pools.DISCOVERY_TAG, value=args.cluster_name,
                        opts=child)

        # The controller runs as the restricted profile asks (non-root, no privilege, read-only root, RuntimeDefault).
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE, "labels": POD_SECURITY_LABELS}, opts=child)
        crds = k8s.helm.v3.Release(f"{name}-crds", name="karpenter-crd", **release_source(KARPENTER_CRD, args.crd_repository),
                                   namespace=namespace.metadata["name"], max_history=10, opts=child)
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name="karpenter", **release_source(KARPENTER, args.repository), namespace=namespace.metadata["name"],
            # The CRDs come from their own chart, which upgrades them (Helm never upgrades a chart's crds/ folder).
            skip_crds=True, values=karpenter_values(args, self.controller_role.arn, self.queue.name), max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[crds, *args.monitoring]))

        # A node launched before its role may join the cluster would never become Ready.
        placed = pulumi.ResourceOptions(parent=self, depends_on=[self.release, node_access])
        self.node_pools: list[k8s.apiextensions.CustomResource] = []
        for pool in node_pools.POOLS:
            node_class = node_pools.node_class(pool, args.config, args.cluster_name, self.node_role.name, args.volume_key_arn, args.node_tags)
            made = k8s.apiextensions.CustomResource(f"{name}-{pool}-class", **_resource(node_class), opts=placed)
            self.node_pools.append(k8s.apiextensions.CustomResource(
                f"{name}-{pool}-pool", **_resource(node_pools.node_pool(pool, args.config, args.zones, args.worker_grace_seconds)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[made])))
        self.register_outputs({"nodeRoleArn": self.node_role.arn, "controllerRoleArn": self.controller_role.arn, "queueUrl": self.queue.url})

    def _queue_policy(self, queue_arn: pulumi.Output[str], rules: list[aws.cloudwatch.EventRule]) -> pulumi.Output[str]:
        """Only EventBridge, and only the rules above, may send; nothing reaches the queue without TLS."""
        return iam.document([
            {"sid": "EventBridgeRulesSend", "actions": ["sqs:SendMessage"], "resources": [queue_arn],
             "principals": [{"type": "Service", "identifiers": [EVENTS_SERVICE]}],
             "conditions": [{"test": "ArnEquals", "variable": "aws:SourceArn", "values": [rule.arn for rule in rules]}]},
            {"sid": "DenyHTTP", "effect": "Deny", "actions": ["sqs:*"], "resources": [queue_arn],
             "principals": [{"type": "*", "identifiers": ["*"]}],
             "conditions": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]},
        ], self)

    def _queue_key_usage(self, args: KarpenterArgs, rules: list[aws.cloudwatch.EventRule]) -> list[dict]:
        """EventBridge encrypts with the key for the rules above; the controller decrypts what it receives, through SQS."""
        return [
            kms.to_service("EventBridgeEncryptsForTheRules", EVENTS_SERVICE, ["kms:GenerateDataKey", "kms:Decrypt"],
                           [{"test": "ArnEquals", "variable": "aws:SourceArn", "values": [rule.arn for rule in rules]}]),
            kms.to_principals("ControllerDecryptsThroughSqs", [self.controller_role.arn], ["kms:Decrypt"],
                              [{"test": "StringEquals", "variable": "kms:ViaService",
                                "values": [kms.service_host("sqs", args.region)]}]),
        ]

def _resource(manifest: dict) -> dict:
    return {"api_version": manifest["apiVersion"], "kind": manifest["kind"], "metadata": manifest["metadata"], "spec": manifest["spec"]}
