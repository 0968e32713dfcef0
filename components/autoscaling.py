"""Autoscaling: KEDA, which the Airflow chart's worker ScaledObject needs, in its own namespace with its CRDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.charts import KEDA, release_source
from components.images import IMAGES, ImagePins, image_values
from components.names import POOL_LABEL
from components.task_pods import POD_SECURITY_LABELS

NAMESPACE = "keda"


def keda_values(images: ImagePins = IMAGES) -> dict:
    # The chart's pods already run as the restricted profile asks (non-root, RuntimeDefault, read-only root, no escalation,
    # no capabilities) with requests and memory limits; all three call the Kubernetes API, so they keep their tokens.
    return {
        # The ScaledObject CRD comes with the chart; the Airflow release depends on it.
        "crds": {"install": True},
        "nodeSelector": {POOL_LABEL: "system"},
        **image_values(KEDA.name, images),
    }


@dataclass
class KedaArgs:
    provider: k8s.Provider
    # The chart repository (official, or the stack's mirror).
    repository: str = KEDA.repository
    images: ImagePins = field(default_factory=lambda: IMAGES)  # the stack's pinned images (config.images)


class Keda(pulumi.ComponentResource):
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: KedaArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("airflow-platform:index:Keda", name, None, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(providers={"kubernetes": args.provider})))
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE, "labels": POD_SECURITY_LABELS},
                                          opts=pulumi.ResourceOptions(parent=self))
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="keda",
            **release_source(KEDA, args.repository),
            namespace=namespace.metadata["name"],
            values=keda_values(args.images),
            max_history=10,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"status": self.release.status})
