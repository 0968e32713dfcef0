"""Tests Karpenter as the program declares it: the NodePools and EC2NodeClasses, the controller's release values, the
interruption queue and its EventBridge rules, the node role's access, the discovery tags, and the worker node group gone."""

from __future__ import annotations

import json

import pytest

from components.names import POOL_LABEL

POOLS = ["workers", "tasks"]
NODE_GRACE_MINUTES = {"dev": 95, "prod": 185}  # 1.5 × airflow.longestTaskMinutes (60 and 120), plus 5


def custom(plan, kind: str, name: str) -> dict:
    [found] = [r.inputs for r in plan.of_type(f"kubernetes:{'karpenter.sh/v1' if kind == 'NodePool' else 'karpenter.k8s.aws/v1'}:{kind}")
               if r.inputs["metadata"]["name"] == name]
    return found


def requirement(pool: dict, key: str) -> list[tuple[str, list[str]]]:
    return [(r["operator"], r["values"]) for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == key]


def release(plan, name: str) -> dict:
    [found] = [r.inputs for r in plan.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["name"] == name]
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_system_node_group_is_managed(request, stack):
    """The worker managed node group is gone: the system group stays, Karpenter brings every other node."""
    plan = request.getfixturevalue(f"{stack}_plan")
    assert [g.inputs["labels"] for g in plan.of_type("aws:eks/nodeGroup:NodeGroup")] == [{POOL_LABEL: "system"}]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("pool", POOLS)
def test_pool_nodes_carry_its_label_and_taint(request, stack, pool):
    """A pool's nodes are labelled and tainted with its name, and built from the node class of the same name."""
    spec = custom(request.getfixturevalue(f"{stack}_plan"), "NodePool", pool)["spec"]["template"]
    assert spec["metadata"]["labels"] == {POOL_LABEL: pool}
    assert spec["spec"]["taints"] == [{"key": POOL_LABEL, "value": pool, "effect": "NoSchedule"}]
    assert spec["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool}


@pytest.mark.parametrize("stack, pool, capacity, categories", [
    ("dev", "workers", ["spot", "on-demand"], ["m"]), ("dev", "tasks", ["spot", "on-demand"], ["c", "m", "r"]),
    ("prod", "workers", ["on-demand"], ["m"]), ("prod", "tasks", ["spot", "on-demand"], ["c", "m", "r"]),
], ids=["dev-workers", "dev-tasks", "prod-workers", "prod-tasks"])
def test_requirements_come_from_the_config(request, stack, pool, capacity, categories):
    """Capacity types and instance categories as configured (on-demand workers in production), generation 6 and up, 4 to
    64 vCPUs and no bare metal, amd64 Linux, and only the stack's zones."""
    plan = request.getfixturevalue(f"{stack}_plan")
    nodes = custom(plan, "NodePool", pool)
    assert requirement(nodes, "karpenter.sh/capacity-type") == [("In", capacity)]
    assert requirement(nodes, "karpenter.k8s.aws/instance-category") == [("In", categories)]
    assert requirement(nodes, "karpenter.k8s.aws/instance-generation") == [("Gt", ["5"])]
    assert requirement(nodes, "karpenter.k8s.aws/instance-cpu") == [("Gt", ["3"]), ("Lt", ["65"])]
    assert requirement(nodes, "karpenter.k8s.aws/instance-size") == [("NotIn", ["metal"])]
    assert requirement(nodes, "kubernetes.io/arch") == [("In", ["amd64"])]
    assert requirement(nodes, "topology.kubernetes.io/zone") == [("In", plan.outputs["zones"])]


@pytest.mark.parametrize("stack, pool, limits", [
    ("dev", "workers", {"cpu": "16", "memory": "64Gi"}), ("dev", "tasks", {"cpu": "48", "memory": "200Gi"}),
    ("prod", "workers", {"cpu": "120", "memory": "480Gi"}), ("prod", "tasks", {"cpu": "100", "memory": "400Gi"}),
], ids=["dev-workers", "dev-tasks", "prod-workers", "prod-tasks"])
def test_limits(request, stack, pool, limits):
    """Each pool is bounded by its configured limits."""
    assert custom(request.getfixturevalue(f"{stack}_plan"), "NodePool", pool)["spec"]["limits"] == limits


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("pool", POOLS)
def test_node_grace_is_the_workers_grace_and_a_margin(request, stack, pool):
    """Unless configured, a node waits the workers' grace period and 5 minutes for its pods, and never for ever."""
    spec = custom(request.getfixturevalue(f"{stack}_plan"), "NodePool", pool)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriod"] == f"{NODE_GRACE_MINUTES[stack]}m"


def test_dev_disruption_defaults(dev_plan):
    """Dev keeps the defaults: empty nodes go after 10 minutes (5 for tasks), 10 % at a time, monthly expiry, no quiet window."""
    workers, tasks = (custom(dev_plan, "NodePool", pool)["spec"] for pool in POOLS)
    assert workers["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m", "budgets": [{"nodes": "10%"}]}
    assert tasks["disruption"]["consolidateAfter"] == "5m"
    assert workers["template"]["spec"]["expireAfter"] == "720h"


def test_prod_quiet_hours_hold_drift_and_consolidation(prod_plan):
    """Production's workers are disrupted one node at a time, and in business hours not by drift or underuse at all."""
    disruption = custom(prod_plan, "NodePool", "workers")["spec"]["disruption"]
    assert disruption["budgets"] == [
        {"nodes": "1"},
        {"nodes": "0", "reasons": ["Drifted", "Underutilized"], "schedule": "0 7 * * 1-5", "duration": "12h"}]
    assert (disruption["consolidateAfter"], custom(prod_plan, "NodePool", "workers")["spec"]["template"]["spec"]["expireAfter"]) == ("15m", "336h")


@pytest.mark.parametrize("pool, disk", [("workers", "100Gi"), ("tasks", "100Gi")])
def test_node_class_pins_the_ami_and_hardens_the_node(prod_plan, pool, disk):
    """The pinned AL2023 release, IMDSv2 with one hop, an encrypted gp3 root volume under the cluster key, the platform's tags."""
    spec = custom(prod_plan, "EC2NodeClass", pool)["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20250915"}]
    assert spec["metadataOptions"] == {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"}
    [device] = spec["blockDeviceMappings"]
    assert device["ebs"] == {"volumeSize": disk, "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True,
                             "kmsKeyID": prod_plan.named("airflow-prod-cluster-key").outputs["arn"]}
    assert spec["role"] == prod_plan.named("airflow-prod-karpenter-node-role").outputs["name"]
    assert spec["tags"] == {"cost-center": "data-platform-prod", "environment": "prod", "owner": "data-platform", "managed-by": "pulumi"}
    assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "airflow-prod"}}]


def test_discovery_tags_on_every_private_subnet_and_the_cluster_security_group(prod_plan):
    """What the node classes select: each private subnet and the cluster's security group, tagged with the cluster's name."""
    tags = {t.inputs["resourceId"]: (t.inputs["key"], t.inputs["value"]) for t in prod_plan.of_type("aws:ec2/tag:Tag")
            if t.inputs["key"] == "karpenter.sh/discovery"}
    cluster_group = prod_plan.named("airflow-prod-cluster-eks").outputs["vpcConfig"]["clusterSecurityGroupId"]
    assert tags == {resource: ("karpenter.sh/discovery", "airflow-prod") for resource in [*prod_plan.outputs["privateSubnetIds"], cluster_group]}


def test_controller_release_values(prod_plan):
    """Two controllers on the system nodes, as the controller role, reading the interruption queue, their metrics scraped."""
    values = release(prod_plan, "karpenter")["values"]
    queue = prod_plan.named("airflow-prod-karpenter-queue")
    assert values["settings"] == {"clusterName": "airflow-prod", "clusterEndpoint": prod_plan.outputs["clusterEndpoint"],
                                  "interruptionQueue": queue.inputs["name"]}
    assert values["serviceAccount"] == {"name": "karpenter", "annotations": {
        "eks.amazonaws.com/role-arn": prod_plan.named("airflow-prod-karpenter-controller-role").outputs["arn"]}}
    assert (values["replicas"], values["nodeSelector"]) == (2, {"kubernetes.io/os": "linux", POOL_LABEL: "system"})
    assert values["controller"]["resources"] == {"requests": {"cpu": "500m", "memory": "1024Mi"}, "limits": {"memory": "1024Mi"}}
    assert values["serviceMonitor"] == {"enabled": True, "additionalLabels": {"release": "kube-prometheus-stack"}}


def test_charts_are_pinned_and_the_crds_come_from_their_own_chart(prod_plan):
    """Both charts at 1.14.1 from Karpenter's registry; the controller's release skips the CRDs the CRD chart upgrades."""
    crds, controller = release(prod_plan, "karpenter-crd"), release(prod_plan, "karpenter")
    assert (crds["chart"], crds["version"], crds["namespace"]) == ("oci://public.ecr.aws/karpenter/karpenter-crd", "1.14.1", "karpenter")
    assert (controller["chart"], controller["version"], controller["skipCrds"]) == ("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", True)


INTERRUPTIONS = {
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
}


@pytest.mark.parametrize("event", INTERRUPTIONS)
def test_each_interruption_event_reaches_the_queue(prod_plan, event):
    """A rule per event Karpenter acts on, each with the queue as its one target."""
    rule = prod_plan.named(f"airflow-prod-karpenter-{event}")
    assert json.loads(rule.inputs["eventPattern"]) == INTERRUPTIONS[event]
    [target] = [t for t in prod_plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.inputs["rule"] == rule.outputs["name"]]
    assert target.inputs["arn"] == prod_plan.named("airflow-prod-karpenter-queue").outputs["arn"]


def test_queue_is_encrypted_and_short_lived(prod_plan):
    """The queue uses its own customer-managed key and keeps a message 5 minutes, as long as it is of use."""
    queue = prod_plan.named("airflow-prod-karpenter-queue").inputs
    assert queue["kmsMasterKeyId"] == prod_plan.named("airflow-prod-karpenter-queue-key").outputs["arn"]
    assert (queue["messageRetentionSeconds"], queue["name"]) == (300, "airflow-prod-karpenter")


def test_queue_policy_admits_only_the_rules(prod_plan):
    """EventBridge may send for the four rules only; anything without TLS is denied; nobody else is allowed anything."""
    document = json.loads(prod_plan.named("airflow-prod-karpenter-queue-policy").inputs["policy"])
    allow, deny = document["Statement"]
    rules = sorted(prod_plan.named(f"airflow-prod-karpenter-{event}").outputs["arn"] for event in INTERRUPTIONS)
    assert (allow["Effect"], allow["Principal"], allow["Action"]) == ("Allow", {"Service": "events.amazonaws.com"}, "sqs:SendMessage")
    assert sorted(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == rules
    assert (deny["Effect"], deny["Action"], deny["Condition"]) == ("Deny", "sqs:*", {"Bool": {"aws:SecureTransport": "false"}})


def test_nodes_join_through_an_access_entry_of_their_own(prod_plan):
    """The Karpenter node role joins the cluster as EC2_LINUX nodes; it is not the system group's role."""
    [entry] = [e.inputs for e in prod_plan.of_type("aws:eks/accessEntry:AccessEntry") if e.inputs.get("type") == "EC2_LINUX"]
    node_role = prod_plan.named("airflow-prod-karpenter-node-role")
    assert entry["principalArn"] == node_role.outputs["arn"]
    assert node_role.outputs["arn"] != prod_plan.named("airflow-prod-cluster-node-role").outputs["arn"]


def test_controller_waits_for_the_servicemonitor_api(prod_plan):
    """The chart renders its ServiceMonitor only where that API exists: the controller is installed after the stack's
    Prometheus operator, whose chart brings the CRD."""
    controller = prod_plan.named("airflow-prod-karpenter-release")
    assert prod_plan.named("airflow-prod-observability-kube-prometheus-stack").urn in controller.dependencies


def test_airflow_waits_for_the_node_pools(prod_plan):
    """The Airflow release, whose workers need the worker pool, is installed after both NodePools."""
    airflow = prod_plan.named("airflow-prod-airflow-release")
    pools = {prod_plan.named(f"airflow-prod-karpenter-{pool}-pool").urn for pool in POOLS}
    assert pools <= set(airflow.dependencies)
