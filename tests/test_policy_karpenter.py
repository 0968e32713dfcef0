"""Tests the Karpenter policies of the pack on compliant and violating inputs, asserting the exact messages, and the
duration parser the NodePool grace policy reads terminationGracePeriod with."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.airflow_guard.karpenter import (EVENT_RULE, EVENT_TARGET, NODE_CLASS, NODE_POOL, POOL_LABEL as POOL, QUEUE, QUEUE_POLICY,
                                              duration_seconds)
from policies.airflow_guard.model import Resource
from tests.test_policy_rules import KEY_ARN, RELEASE, airflow, airflow_values, allow, doc, messages, res, workers

SYSTEM = {POOL: "system"}
QUEUE_NAME = "airflow-prod-karpenter"
QUEUE_ARN = f"arn:aws:sqs:eu-west-1:123456789012:{QUEUE_NAME}"
QUEUE_URL = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{QUEUE_NAME}"
ROOT = "arn:aws:iam::123456789012:root"


def present(props: dict[str, Any]) -> dict[str, Any]:
    """`props` without the keys a caller set to None (to remove them)."""
    return {key: value for key, value in props.items() if value is not None}


def node_pool(name: str = "workers", grace: str | None = "135m", labels: dict[str, str] | None = None,
              requirements: list[dict[str, Any]] | None = None, **spec: Any) -> Resource:
    """A NodePool as node_pools.py builds it; `spec` replaces keys of its spec (limits)."""
    template = {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name},
                "requirements": requirements or [], **({"terminationGracePeriod": grace} if grace else {})}
    return res(NODE_POOL, name, {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": {
        "template": {"metadata": {"labels": labels or {POOL: name}}, "spec": template},
        "limits": {"cpu": "100", "memory": "400Gi"}, **spec}})


ROOT_VOLUME = {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "100Gi", "volumeType": "gp3", "encrypted": True, "kmsKeyID": KEY_ARN}}


def node_class(name: str = "workers", **spec: Any) -> Resource:
    """An EC2NodeClass as node_pools.py builds it; `spec` replaces keys of its spec (None removes one)."""
    full = {"role": "karpenter-node", "amiSelectorTerms": [{"alias": "al2023@v20250915"}],
            "metadataOptions": {"httpEndpoint": "enabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [ROOT_VOLUME], **spec}
    return res(NODE_CLASS, name, {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": name},
                                  "spec": present(full)})


def karpenter(name: str = "karpenter", **values: Any) -> Resource:
    """The karpenter chart's release with the component's values; `values` replace top-level keys (None removes one)."""
    full = {"settings": {"clusterName": "airflow-prod", "interruptionQueue": QUEUE_NAME}, "replicas": 2,
            "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM}, **values}
    return res(RELEASE, name, {"chart": "oci://public.ecr.aws/karpenter/karpenter", "version": "1.14.1",
                               "values": present(full)})


def interruption_queue(principals: tuple[Any, ...] = ({"Service": "events.amazonaws.com"},), **queue: Any) -> list[Resource]:
    """The queue and its policy (joined by URL); `queue` replaces the queue's props (None removes one)."""
    props = {"name": QUEUE_NAME, "messageRetentionSeconds": 300, "kmsMasterKeyId": KEY_ARN, **queue}
    sends = [allow("sqs:SendMessage", QUEUE_ARN, Principal=principal) for principal in principals]
    deny_http = {"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": QUEUE_ARN,
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    return [res(QUEUE, "queue", present(props)),
            res(QUEUE_POLICY, "queue-policy", {"queueUrl": QUEUE_URL, "policy": doc(*sends, deny_http)})]


def rule(logical: str, pattern: dict[str, Any], **props: Any) -> Resource:
    return res(EVENT_RULE, logical, {"eventPattern": json.dumps(pattern), **props})


def target(on: Resource, queue: Resource) -> Resource:
    """A target sending `on`'s events to the queue, both references computed from the resources."""
    return res(EVENT_TARGET, f"{on.name}-target", {"rule": f"{on.name}-1a2b", "arn": QUEUE_ARN}, {"rule": [on], "arn": [queue]})


EC2_RULE = rule("ec2", {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]})
STATE_RULE = rule("state-change", {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}, name="state-change")
# A pattern without detail-type matches every detail type of its source.
HEALTH_RULE = rule("health", {"source": ["aws.health"]})


def fed(queue: list[Resource], *rules: Resource) -> list[Resource]:
    """The queue with a target for each rule; the state-change rule's target names rule and queue literally."""
    literal = [res(EVENT_TARGET, "state-change-target", {"rule": "state-change", "arn": QUEUE_ARN})]
    return queue + list(rules) + [target(r, queue[0]) for r in rules if r is not STATE_RULE] + (literal if STATE_RULE in rules else [])


CASES: dict[str, tuple[list[Resource], list[Resource], list[str]]] = {
    "karpenter-node-grace-covers-workers": (
        airflow(airflow_values()) + [node_pool("workers", grace="1h30m"), node_pool("tasks", grace="3h")],
        airflow(airflow_values()) + [node_pool("workers", grace="89m"), node_pool("tasks", grace=None), node_pool("gpu", grace="90 minutes")],
        ["NodePool workers deletes a removed node's pods after 89m (5340 s), before the 5400 s release airflow gives its workers to stop",
         "NodePool tasks sets no terminationGracePeriod: a node it removes drains for as long as a do-not-disrupt pod runs",
         "NodePool gpu's terminationGracePeriod '90 minutes' is not a duration such as 135m or 1h30m"]),
    "karpenter-interruption-queue": (
        [karpenter()] + fed(interruption_queue(), EC2_RULE, STATE_RULE, HEALTH_RULE),
        [karpenter(), karpenter("elsewhere", settings={"interruptionQueue": "other-queue"}), karpenter("deaf", settings={"clusterName": "x"})]
        + fed(interruption_queue(principals=("*", {"AWS": ROOT}), kmsMasterKeyId=None), EC2_RULE,
              rule("health", {"source": ["aws.health"], "detail-type": ["AWS Health Abuse Event"]}),
              rule("state-change", {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}, state="DISABLED")),
        ["queue queue has no policy letting events.amazonaws.com send to it",
         f"queue queue's policy allows principals other than events.amazonaws.com: AWS *, AWS {ROOT}",
         "queue queue receives no EC2 Instance State-change Notification, AWS Health Event events",
         "queue queue is not encrypted",
         "release elsewhere's interruption queue other-queue is not a queue of this stack",
         "release deaf sets no settings.interruptionQueue: Karpenter hears of no interruption before it happens"]),
    "karpenter-controller-off-karpenter-nodes": (
        # The chart's affinity (kept, or merged with values that set only podAntiAffinity), the system pool's selector.
        [karpenter(replicas=None), karpenter("merged", nodeSelector=None, affinity={"podAntiAffinity": {}}), node_pool()],
        [karpenter(replicas=1, nodeSelector=None, affinity={"nodeAffinity": None}),
         karpenter("either", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
             {"matchExpressions": [{"key": "karpenter.sh/nodepool", "operator": "DoesNotExist"}]},
             {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}),
         node_pool("burst", labels=SYSTEM)],
        ["release karpenter may run the controller on Karpenter's nodes: its affinity does not require karpenter.sh/nodepool "
         "DoesNotExist, nor its nodeSelector airflow-platform/pool: system",
         "release karpenter runs 1 controller replica, fewer than 2",
         "release either may run the controller on Karpenter's nodes: its affinity does not require karpenter.sh/nodepool "
         "DoesNotExist, and NodePool burst labels its nodes airflow-platform/pool: system too"]),
    "karpenter-node-class-hardened": (
        # Without metadataOptions the CRD's defaults apply: httpTokens required, one hop.
        [node_class(), node_class("defaults", metadataOptions=None)],
        [node_class(metadataOptions={"httpTokens": "optional", "httpPutResponseHopLimit": 2},
                    blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"encrypted": True}},
                                         {"deviceName": "/dev/xvdb", "ebs": {"encrypted": False, "kmsKeyID": KEY_ARN}}]),
         node_class("bare", blockDeviceMappings=None)],
        ["EC2NodeClass workers allows IMDSv1 (httpTokens optional)",
         "EC2NodeClass workers lets pods reach the node's metadata (hop limit 2)",
         "EC2NodeClass workers leaves /dev/xvda unencrypted or on the default key",
         "EC2NodeClass workers leaves /dev/xvdb unencrypted or on the default key",
         "EC2NodeClass bare declares no blockDeviceMappings: its root volume is not on a key of this stack"]),
    "karpenter-node-pool-limits": (
        [node_pool(), node_pool("tasks", limits={"cpu": 64, "memory": "256Gi"})],
        [node_pool(limits={"cpu": "100"}), node_pool("tasks", limits={})],
        ["NodePool workers sets no spec.limits.memory", "NodePool tasks sets no spec.limits.cpu, spec.limits.memory"]),
}


class TestDurations:
    """Tests the parser of NodePool durations, which the CRD takes as `^([0-9]+(s|m|h))+$`."""

    @pytest.mark.parametrize("text, seconds", [("135m", 8100), ("3h", 10800), ("1h30m", 5400), ("90s", 90), ("1h0m30s", 3630),
                                               ("30m1h", 5400)])
    def test_durations_in_seconds(self, text, seconds):
        """Each number counts in its unit, summed, in any order (as Go's time.ParseDuration)."""
        assert duration_seconds(text) == seconds

    @pytest.mark.parametrize("text", ["", "90", "1.5h", "2d", "-5m", "5 m", "Never", "1h30", 5400, None])
    def test_what_the_crd_refuses_is_no_duration(self, text):
        """Fractions, days, signs, spaces, a bare number, Never and non-strings are not durations the CRD accepts."""
        assert duration_seconds(text) is None


class TestKarpenterJoins:
    """Tests how the policies find what the Karpenter release and NodePools depend on."""

    def test_workers_without_a_grace_period_take_the_charts_600_s(self):
        """A release that leaves workers.terminationGracePeriodSeconds out gives them the chart's 600 s."""
        values = airflow_values(workers={k: v for k, v in workers().items() if k != "terminationGracePeriodSeconds"})
        assert messages("karpenter-node-grace-covers-workers", airflow(values) + [node_pool(grace="10m"), node_pool("tasks", grace="9m")]) == [
            "NodePool tasks deletes a removed node's pods after 9m (540 s), before the 600 s release airflow gives its workers to stop"]

    def test_a_pool_without_airflow_needs_only_a_grace(self):
        """With no Airflow release in the stack, any valid grace passes."""
        assert messages("karpenter-node-grace-covers-workers", [node_pool(grace="1m")]) == []

    def test_a_pool_requiring_the_system_label_counts_as_labelling_it(self):
        """A NodePool requiring airflow-platform/pool In [system] gives its nodes that label, so the selector alone is not enough."""
        spill = node_pool("spill", labels={"team": "data"}, requirements=[{"key": POOL, "operator": "In", "values": ["system"]}])
        assert messages("karpenter-controller-off-karpenter-nodes", [karpenter(affinity={"nodeAffinity": None}), spill]) == [
            "release karpenter may run the controller on Karpenter's nodes: its affinity does not require karpenter.sh/nodepool "
            "DoesNotExist, and NodePool spill labels its nodes airflow-platform/pool: system too"]

    def test_other_charts_are_not_judged(self):
        """The CRD chart's release, or Airflow's, has no interruption queue or controller to judge."""
        crds = res(RELEASE, "karpenter-crd", {"chart": "oci://public.ecr.aws/karpenter/karpenter-crd", "version": "1.14.1"})
        for policy in ("karpenter-interruption-queue", "karpenter-controller-off-karpenter-nodes"):
            assert messages(policy, [crds, *airflow(airflow_values())]) == []
