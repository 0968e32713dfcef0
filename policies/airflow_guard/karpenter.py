"""Karpenter: NodePools that let the longest task finish and stay bounded, hardened EC2NodeClasses, an interruption
queue only EventBridge feeds, and a controller that never runs on the nodes it removes.

The NodePools and EC2NodeClasses are custom resources of the stack, read as declared; absent fields take the CRDs'
defaults (Karpenter 1.14). The controller is a Helm release, whose values are the contract (helm.py); absent keys take
the karpenter chart's defaults.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional

from .airflow import CHART_DEFAULT_GRACE_SECONDS
from .documents import Statement, as_list, statements
from .helm import AIRFLOW_CHART, RELEASE, chart, only_chart, values
from .model import Resource, Stack, decoded, known, path, policy

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
KARPENTER_CHART = "karpenter"
EVENTS_SERVICE = "events.amazonaws.com"
# What Karpenter drains a node ahead of: detail-type -> source of the EventBridge event.
INTERRUPTION_EVENTS = {"EC2 Spot Instance Interruption Warning": "aws.ec2", "EC2 Instance Rebalance Recommendation": "aws.ec2",
                       "EC2 Instance State-change Notification": "aws.ec2", "AWS Health Event": "aws.health"}
NODEPOOL_LABEL = "karpenter.sh/nodepool"  # on every node Karpenter launches
POOL_LABEL = "airflow-platform/pool"
SYSTEM_POOL = "system"  # the managed node group's label value
# The karpenter chart's affinity (values.yaml of 1.14.1; its podAntiAffinity aside): off every node of a NodePool.
CHART_AFFINITY = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": NODEPOOL_LABEL, "operator": "DoesNotExist"}]}]}}}
CHART_REPLICAS = 2
MINIMUM_REPLICAS = 2
DURATION = re.compile(r"([0-9]+)([smh])")
SECONDS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(text: Any) -> Optional[int]:
    """A duration as the NodePool CRD takes it (`^([0-9]+(s|m|h))+$`: "135m", "3h", "1h30m") in seconds; None otherwise."""
    if not isinstance(text, str) or not re.fullmatch(r"([0-9]+[smh])+", text):
        return None
    return sum(int(number) * SECONDS[unit] for number, unit in DURATION.findall(text))


def _worker_grace(stack: Stack) -> list[tuple[Resource, int]]:
    """Each Airflow release of the stack with its workers' terminationGracePeriodSeconds."""
    return [(r, int(path(values(r), "workers.terminationGracePeriodSeconds", CHART_DEFAULT_GRACE_SECONDS)))
            for r in stack.of_type(RELEASE) if chart(r) == AIRFLOW_CHART]


@policy("karpenter-node-grace-covers-workers", types=(NODE_POOL,), needs_stack=True, severity="high",
        description="Every Karpenter NodePool gives a node it removes a terminationGracePeriod of at least the Airflow "
                    "workers' terminationGracePeriodSeconds: the longest task finishes, and no node waits for ever.",
        remediation="Set spec.template.spec.terminationGracePeriod (karpenter.nodePools.<pool>.terminationGraceMinutes; its "
                    "default is the workers' grace period): after it Karpenter deletes the node's pods whatever do-not-disrupt says, "
                    "and without it a node drains for as long as a do-not-disrupt pod runs.")
def node_grace(pool: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    grace = pool.get("spec.template.spec.terminationGracePeriod")
    if grace is None:
        yield f"NodePool {pool.name} sets no terminationGracePeriod: a node it removes drains for as long as a do-not-disrupt pod runs"
        return
    seconds = duration_seconds(grace)
    if seconds is None:
        yield f"NodePool {pool.name}'s terminationGracePeriod {grace!r} is not a duration such as 135m or 1h30m"
        return
    for release, workers in _worker_grace(stack):
        if seconds < workers:
            yield (f"NodePool {pool.name} deletes a removed node's pods after {grace} ({seconds} s), before the {workers} s "
                   f"release {release.name} gives its workers to stop")


@policy("karpenter-node-pool-limits", types=(NODE_POOL,), severity="medium",
        description="Every Karpenter NodePool caps the CPU and memory of its nodes together.",
        remediation="Set spec.limits.cpu and spec.limits.memory (karpenter.nodePools.<pool>.cpuLimit and memoryLimitGiB, sized "
                    "by the capacity contract): without them a runaway deployment or a stuck pod loop launches nodes without bound.")
def node_pool_limits(pool: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    missing = [f"spec.limits.{resource}" for resource in ("cpu", "memory") if pool.get(f"spec.limits.{resource}") in (None, "")]
    if missing:
        yield f"NodePool {pool.name} sets no {', '.join(missing)}"


@policy("karpenter-node-class-hardened", types=(NODE_CLASS,), severity="high",
        description="Every EC2NodeClass requires IMDSv2 with one hop (absent fields take the CRD's defaults: required, 1) and "
                    "declares its volumes, each EBS-encrypted with a kmsKeyID.",
        remediation="Set metadataOptions httpTokens 'required' and httpPutResponseHopLimit 1 (pods use IRSA, not the node's role), "
                    "and blockDeviceMappings whose ebs has encrypted true and kmsKeyID (node_pools.py uses the cluster key); "
                    "without mappings the root volume takes the AMI family's default, on the account's default EBS key.")
def node_class_hardened(node_class: Resource, _: Optional[Stack], __: Mapping[str, Any]) -> Iterable[str]:
    tokens = node_class.get("spec.metadataOptions.httpTokens", "required")
    if tokens != "required":
        yield f"EC2NodeClass {node_class.name} allows IMDSv1 (httpTokens {tokens})"
    hops = node_class.get("spec.metadataOptions.httpPutResponseHopLimit", 1)
    if hops != 1:
        yield f"EC2NodeClass {node_class.name} lets pods reach the node's metadata (hop limit {int(hops)})"
    mappings = as_list(node_class.get("spec.blockDeviceMappings"))
    if not mappings:
        yield f"EC2NodeClass {node_class.name} declares no blockDeviceMappings: its root volume is not on a key of this stack"
    for mapping in mappings:
        ebs = known(mapping.get("ebs")) or {}
        if known(ebs.get("encrypted")) is not True or not known(ebs.get("kmsKeyID")):
            yield f"EC2NodeClass {node_class.name} leaves {known(mapping.get('deviceName'))} unencrypted or on the default key"


def _refers_to(resource: Resource, prop: str, queue: Resource) -> bool:
    """resource.props[prop] was computed from the queue, or is its ARN or URL (both end in the queue's name)."""
    value = resource.props.get(prop)
    return queue.urn in resource.property_dependencies.get(prop, ()) or (
        isinstance(value, str) and re.split("[:/]", value)[-1] == known(queue.props.get("name")))


def _queue_policies(queue: Resource, stack: Stack) -> list[Resource]:
    """The queue's QueuePolicy resources: their queueUrl points at it."""
    return [p for p in stack.of_type(QUEUE_POLICY) if _refers_to(p, "queueUrl", queue)]


def _principals(statement: Statement) -> list[str]:
    principal = statement.principal
    if isinstance(principal, Mapping):
        return [f"{kind} {value}" for kind, given in principal.items() for value in as_list(given)]
    return [f"AWS {value}" for value in as_list(principal)]


def _catches(rule: Resource, source: str, detail: str) -> bool:
    """An enabled rule whose pattern matches the event (a pattern without source or detail-type matches any)."""
    if known(rule.props.get("state")) == "DISABLED" or known(rule.props.get("isEnabled")) is False:
        return False
    pattern = decoded(rule.props.get("eventPattern"))
    if not isinstance(pattern, Mapping):
        return False
    sources, details = as_list(pattern.get("source")), as_list(pattern.get("detail-type"))
    return (not sources or source in sources) and (not details or detail in details)


def _queue_problems(queue: Resource, stack: Stack) -> Iterable[str]:
    documents = [d for d in [queue.props.get("policy")] + [p.props.get("policy") for p in _queue_policies(queue, stack)] if d]
    allowed = {p for document in documents for s in statements(document) if s.allows for p in _principals(s)}
    if f"Service {EVENTS_SERVICE}" not in allowed:
        yield f"queue {queue.name} has no policy letting {EVENTS_SERVICE} send to it"
    others = sorted(allowed - {f"Service {EVENTS_SERVICE}"})
    if others:
        yield f"queue {queue.name}'s policy allows principals other than {EVENTS_SERVICE}: {', '.join(others)}"
    targets = {t.urn for t in stack.of_type(EVENT_TARGET) if _refers_to(t, "arn", queue)}
    rules = [r for r in stack.of_type(EVENT_RULE)
             if any(t.urn in targets for t in stack.pointing_at(r, (EVENT_TARGET,), "rule", r.props.get("name")))]
    missing = [detail for detail, source in INTERRUPTION_EVENTS.items() if not any(_catches(r, source, detail) for r in rules)]
    if missing:
        yield f"queue {queue.name} receives no {', '.join(missing)} events"
    if not known(queue.props.get("kmsMasterKeyId")) and known(queue.props.get("sqsManagedSseEnabled")) is not True:
        yield f"queue {queue.name} is not encrypted"


@policy("karpenter-interruption-queue", types=(RELEASE,), needs_stack=True, severity="high",
        description="Karpenter's settings.interruptionQueue is an encrypted SQS queue of the stack that only EventBridge may send "
                    "to, fed Spot interruption warnings, rebalance recommendations, instance state changes and AWS Health events.",
        remediation="Keep the Karpenter component's queue: KMS-encrypted, a QueuePolicy whose only Allow is sqs:SendMessage for "
                    f"{EVENTS_SERVICE} (from the rules), and an EventRule with a target on the queue for each of "
                    f"{', '.join(INTERRUPTION_EVENTS)}; without them Karpenter learns of a reclaimed node when its pods die.")
@only_chart(KARPENTER_CHART)
def interruption_queue(release: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    name = path(values(release), "settings.interruptionQueue")
    if not name:
        yield f"release {release.name} sets no settings.interruptionQueue: Karpenter hears of no interruption before it happens"
        return
    queues = [q for q in stack.of_type(QUEUE) if known(q.props.get("name")) == name]
    if not queues:
        yield f"release {release.name}'s interruption queue {name} is not a queue of this stack"
    for queue in queues:
        yield from _queue_problems(queue, stack)


def _helm_merged(default: Any, given: Any) -> Any:
    """`given` over `default` as Helm coalesces values: maps merge key by key, null deletes a key, anything else replaces."""
    if not isinstance(default, Mapping) or not isinstance(given, Mapping):
        return given
    merged = dict(default)
    for key, value in given.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _helm_merged(default.get(key), value)
    return merged


def _avoids_karpenter_nodes(affinity: Any) -> bool:
    """Every required node selector term demands karpenter.sh/nodepool DoesNotExist (the terms are alternatives)."""
    terms = as_list(path(affinity, "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"))
    return bool(terms) and all(any(known(e.get("key")) == NODEPOOL_LABEL and known(e.get("operator")) == "DoesNotExist"
                                   for e in as_list(term.get("matchExpressions"))) for term in terms)


def _labelled_system(pool: Resource) -> bool:
    """A NodePool whose nodes get the system pool's label (from its template's labels or a one-value requirement)."""
    labels = pool.get("spec.template.metadata.labels") or {}
    requirements = as_list(pool.get("spec.template.spec.requirements"))
    return labels.get(POOL_LABEL) == SYSTEM_POOL or any(
        known(r.get("key")) == POOL_LABEL and known(r.get("operator")) == "In" and as_list(r.get("values")) == [SYSTEM_POOL]
        for r in requirements)


@policy("karpenter-controller-off-karpenter-nodes", types=(RELEASE,), needs_stack=True, severity="high",
        description="Karpenter's controller runs at least 2 replicas, off the nodes it manages: its affinity (the chart's, merged "
                    f"with values.affinity as Helm merges) requires {NODEPOOL_LABEL} DoesNotExist in every node selector term, "
                    f"or its nodeSelector requires {POOL_LABEL}: {SYSTEM_POOL}, a label no NodePool of the stack gives its nodes.",
        remediation=f"Keep the chart's affinity (or nodeSelector {POOL_LABEL}: {SYSTEM_POOL}, the managed node group) and replicas 2: "
                    "a controller on a node it drains, or a single replica, stops every scale-up until someone intervenes.")
@only_chart(KARPENTER_CHART)
def controller_placement(release: Resource, stack: Optional[Stack], _: Mapping[str, Any]) -> Iterable[str]:
    v = values(release)
    affinity = _helm_merged(CHART_AFFINITY, known(v["affinity"])) if "affinity" in v else CHART_AFFINITY
    if not _avoids_karpenter_nodes(affinity):
        unsafe = f"release {release.name} may run the controller on Karpenter's nodes: its affinity does not require {NODEPOOL_LABEL} DoesNotExist"
        if (path(v, "nodeSelector") or {}).get(POOL_LABEL) != SYSTEM_POOL:
            yield f"{unsafe}, nor its nodeSelector {POOL_LABEL}: {SYSTEM_POOL}"
        elif shared := [p.name for p in stack.of_type(NODE_POOL) if _labelled_system(p)]:
            yield f"{unsafe}, and NodePool {', '.join(shared)} labels its nodes {POOL_LABEL}: {SYSTEM_POOL} too"
    replicas = path(v, "replicas", CHART_REPLICAS)
    if replicas < MINIMUM_REPLICAS:
        yield f"release {release.name} runs {int(replicas)} controller replica{'s' * (replicas != 1)}, fewer than {MINIMUM_REPLICAS}"
