"""Which connections Kubernetes NetworkPolicy objects (networking.k8s.io/v1) admit into pods: ingress only, evaluated
exactly as the API defines it, so the tests can check the policies the program declares against the pods the charts
render.

The rules (the NetworkPolicy API reference and the "Network Policies" concept page):

- A pod is isolated for ingress once a policy in its namespace selects it (`spec.podSelector`) with Ingress among its
  `policyTypes` (absent, they are Ingress, and Egress too if the policy has egress rules). A pod no policy isolates
  takes every connection; an isolated one only those some selecting policy's ingress rule admits (the rules add up).
- A rule admits a connection when one of its `from` peers matches the source (no `from`, or an empty one: any source)
  and one of its `ports` matches the destination port (no `ports`: any). A peer is a `podSelector` (pods of the policy's
  namespace), a `namespaceSelector` (any pod of the namespaces it selects), both (those pods of those namespaces), or an
  `ipBlock` (a source address in `cidr` and in none of `except`). Namespaces are matched by their labels, which always
  include `kubernetes.io/metadata.name` (the API server sets it).
- A port is a number, optionally the start of a range up to `endPort`, or a name looked up in the destination pod's
  container ports with that protocol; `protocol` is TCP when absent; a port entry with no port admits every port of
  its protocol.
- An `ipBlock` matches a pod source by the pod's own address too: the VPC CNI's policy agent matches sources by address
  alone (eBPF maps of CIDRs, pods resolved to their /32s), and Kubernetes' own network policy end-to-end tests put
  pod addresses in `ipBlock`s. A pod in a VPC subnet an `ipBlock` names is therefore admitted by it.
- Not modelled here: egress; pods on the host's network, which no policy isolates (`host_network`); and the destination
  pod's own node, which is always admitted (the kubelet's probes).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence, Union

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class ContainerPort:
    number: int
    name: Optional[str] = None
    protocol: str = "TCP"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str
    ports: tuple[ContainerPort, ...] = ()
    host_network: bool = False

    def port_named(self, name: str, protocol: str) -> Optional[int]:
        return next((p.number for p in self.ports if p.name == name and p.protocol == protocol), None)


@dataclass(frozen=True)
class Address:
    """A source that is no pod: a load balancer's or the control plane's network interface, a client, the internet."""

    ip: str


Source = Union[Pod, Address]


def container_ports(pod_spec: dict) -> tuple[ContainerPort, ...]:
    """The ports of a pod spec's containers (and of its sidecar init containers, which keep running)."""
    containers = list(pod_spec.get("containers", [])) + [
        c for c in pod_spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return tuple(ContainerPort(p["containerPort"], p.get("name"), p.get("protocol", "TCP"))
                 for c in containers for p in c.get("ports", []))


def selects(selector: Optional[Mapping], labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions, all of them) matches; an empty selector matches all."""
    selector = selector or {}
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise ValueError(f"a label selector has no field {sorted(unknown)}")
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In":
            matched = key in labels and labels[key] in values
        elif operator == "NotIn":
            matched = key not in labels or labels[key] not in values
        elif operator == "Exists":
            matched = key in labels
        elif operator == "DoesNotExist":
            matched = key not in labels
        else:
            raise ValueError(f"a label selector has no operator {operator!r}")
        if not matched:
            return False
    return True


def _policy_types(spec: Mapping) -> list[str]:
    return spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])


@dataclass
class Cluster:
    """The policies and the namespaces' labels of one cluster."""

    policies: Sequence[Mapping]
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def labels_of(self, namespace: str) -> dict[str, str]:
        return {**self.namespace_labels.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}

    def ingress_policies(self, pod: Pod) -> list[Mapping]:
        """The policies that isolate `pod` for ingress."""
        return [p for p in self.policies
                if p["metadata"]["namespace"] == pod.namespace and "Ingress" in _policy_types(p["spec"])
                and selects(p["spec"]["podSelector"], pod.labels)]

    def isolated(self, pod: Pod) -> bool:
        return not pod.host_network and bool(self.ingress_policies(pod))

    def admits(self, source: Source, destination: Pod, port: int, protocol: str = "TCP") -> bool:
        """Whether a connection from `source` to `destination` on `port`/`protocol` is admitted."""
        if not self.isolated(destination):
            return True
        return any(self._rule_admits(policy["metadata"]["namespace"], rule, source, destination, port, protocol)
                   for policy in self.ingress_policies(destination) for rule in policy["spec"].get("ingress") or [])

    def admitting(self, source: Source, destination: Pod, port: int, protocol: str = "TCP") -> list[str]:
        """The names of the policies whose rules admit the connection (empty for a pod no policy isolates)."""
        return [policy["metadata"]["name"] for policy in self.ingress_policies(destination)
                if any(self._rule_admits(policy["metadata"]["namespace"], rule, source, destination, port, protocol)
                       for rule in policy["spec"].get("ingress") or [])]

    def _rule_admits(self, namespace: str, rule: Mapping, source: Source, destination: Pod, port: int, protocol: str) -> bool:
        peers = rule.get("from") or []
        ports = rule.get("ports") or []
        return ((not peers or any(self._peer_matches(namespace, peer, source) for peer in peers))
                and (not ports or any(_port_matches(entry, destination, port, protocol) for entry in ports)))

    def _peer_matches(self, namespace: str, peer: Mapping, source: Source) -> bool:
        if "ipBlock" in peer:
            if set(peer) != {"ipBlock"}:
                raise ValueError("a peer with an ipBlock may have nothing else")
            return _in_block(peer["ipBlock"], source.ip)
        if not ({"podSelector", "namespaceSelector"} & set(peer)):
            raise ValueError(f"a peer needs a podSelector, a namespaceSelector or an ipBlock: {dict(peer)}")
        if not isinstance(source, Pod):
            return False
        if "namespaceSelector" in peer:
            in_namespaces = selects(peer["namespaceSelector"], self.labels_of(source.namespace))
        else:
            in_namespaces = source.namespace == namespace
        return in_namespaces and ("podSelector" not in peer or selects(peer["podSelector"], source.labels))


def _in_block(block: Mapping, ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (address in ipaddress.ip_network(block["cidr"])
            and not any(address in ipaddress.ip_network(excluded) for excluded in block.get("except") or []))


def _port_matches(entry: Mapping, destination: Pod, port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str):
        if "endPort" in entry:
            raise ValueError("endPort needs a numeric port")
        return destination.port_named(wanted, protocol) == port
    return wanted <= port <= entry.get("endPort", wanted)


def policies_selecting(policies: Iterable[Mapping], pod: Pod) -> list[str]:
    """The names of the policies (of any type) that select `pod`."""
    return [p["metadata"]["name"] for p in policies
            if p["metadata"]["namespace"] == pod.namespace and selects(p["spec"]["podSelector"], pod.labels)]
