"""The AWS Load Balancer Controller: what turns the platform's Ingresses into internal ALBs, with its IRSA role (the
controller's documented policy, components/lb_controller_iam.py) and the subnet tags it places internal load balancers by.

It runs in kube-system, as its documentation installs it, twice on the system nodes (one per host and zone, a PDB), with
internal as the default scheme and a TLS 1.3 policy as the default for HTTPS listeners, so an Ingress that names neither
still gets a private, modern load balancer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import iam, lb_controller_iam
from components.charts import AWS_LOAD_BALANCER_CONTROLLER, release_source
from components.images import IMAGES, ImagePins, image_values
from components.names import POOL_LABEL

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
# What the controller places internal load balancers in: the subnets tagged so (its subnet discovery).
INTERNAL_ELB_TAG = "kubernetes.io/role/internal-elb"
# TLS 1.3 with TLS 1.2 for older clients, forward secrecy only: the ELB policy AWS recommends for new HTTPS listeners.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
CONTROLLER_LABELS = {"app.kubernetes.io/name": "aws-load-balancer-controller", "app.kubernetes.io/instance": "aws-load-balancer-controller"}


@dataclass
class LoadBalancerControllerArgs:
    cluster_name: str
    region: str
    partition: str
    account_id: str
    vpc_id: pulumi.Input[str]
    # The subnets the controller puts an internal load balancer it is asked for in (it finds them by their tag).
    load_balancer_subnet_ids: Sequence[pulumi.Input[str]]
    cluster_oidc: iam.OidcIssuer
    provider: k8s.Provider
    monitoring_labels: dict[str, str] = field(default_factory=dict)  # what the stack's Prometheus selects ServiceMonitors by
    # The release that installs the ServiceMonitor CRD, which the chart's ServiceMonitor needs.
    monitoring: Sequence[pulumi.Resource] = ()
    repository: str = AWS_LOAD_BALANCER_CONTROLLER.repository
    images: ImagePins = field(default_factory=lambda: IMAGES)  # the stack's pinned images (config.images)


def controller_values(args: LoadBalancerControllerArgs, role_arn: pulumi.Input[str]) -> dict:
    return {
        "clusterName": args.cluster_name, "region": args.region, "vpcId": args.vpc_id,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT, "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "replicaCount": 2,
        "nodeSelector": {POOL_LABEL: "system"},
        # The chart's default affinity keeps the two off one host; this keeps them off one zone too, where it can.
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": CONTROLLER_LABELS}}],
        "podDisruptionBudget": {"maxUnavailable": 1},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}},
        # The restricted profile (kube-system cannot enforce it: EKS's own node agents run there), completing the chart's
        # defaults (non-root, read-only root, no escalation; its image's user is distroless nonroot, 65532) with the
        # runtime's seccomp profile and no capabilities. The pod keeps its token: the controller watches the API.
        "podSecurityContext": {"fsGroup": 65534, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "defaultLoadBalancerScheme": "internal",
        "defaultSSLPolicy": TLS_POLICY,
        # Not used by the platform, and their writes are not in the controller's policy (lb_controller_iam.py).
        "enableShield": False, "enableWaf": False, "enableWafv2": False,
        "serviceMonitor": {"enabled": True, "additionalLabels": dict(args.monitoring_labels)},
        **image_values(AWS_LOAD_BALANCER_CONTROLLER.name, args.images),
    }


class LoadBalancerController(pulumi.ComponentResource):
    role: aws.iam.Role
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:LoadBalancerController", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        child = pulumi.ResourceOptions(parent=self)
        scope = lb_controller_iam.ControllerScope(args.partition, args.region, args.account_id, args.vpc_id)
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=iam.irsa_trust(args.cluster_oidc, NAMESPACE, [SERVICE_ACCOUNT], self),
                                 opts=child)
        policy = aws.iam.RolePolicy(f"{name}-policy", role=self.role.id,
                                    policy=iam.document(lb_controller_iam.controller_statements(scope), self), opts=child)
        for index, subnet in enumerate(args.load_balancer_subnet_ids):
            aws.ec2.Tag(f"{name}-internal-elb-{index}", resource_id=subnet, key=INTERNAL_ELB_TAG, value="1", opts=child)
        self.release = k8s.helm.v3.Release(
            f"{name}-release", name="aws-load-balancer-controller", **release_source(AWS_LOAD_BALANCER_CONTROLLER, args.repository),
            namespace=NAMESPACE, values=controller_values(args, self.role.arn), max_history=10,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *args.monitoring]))
        self.register_outputs({"roleArn": self.role.arn})
