"""The Helm charts the platform installs: each pinned to a version, its official repository, and the sha256 of the
official archive.

One table serves three readers: the Releases (which chart, from which repository), `make charts` (which archive to
pull, and which digest it must have), and the offline renders (which chart to render). A stack may install every chart
from a mirror instead (`chartRepositories`); a mirror serves the official archives, so the digests stay the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class PinnedChart:
    name: str
    version: str
    # Where the chart is published: a Helm repository (https://, with an index.yaml) or an OCI registry path (oci://).
    repository: str
    # sha256 of the official archive, as the repository's index.yaml records it (`digest`); None until someone has read
    # it there, and then `make charts` refuses the chart rather than trust whatever arrives.
    digest: Optional[str]
    # Where its digest was (or is to be) read, so a reviewer of an upgrade can check the next one the same way.
    digest_source: str

    @property
    def archive(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


# Not yet pinned: the Airflow repository's index (built from apache/airflow-site) could not be read from here.
AIRFLOW = PinnedChart(
    "airflow", "1.19.0", "https://airflow.apache.org", None,
    "https://airflow.apache.org/index.yaml (entries.airflow, version 1.19.0, digest)")
KEDA = PinnedChart(
    "keda", "2.20.2", "https://kedacore.github.io/charts",
    "db60b1fa60f0565fefa4ce2f87e855b6a8854363ee82962fbe28a12a70d64c4c",
    "https://kedacore.github.io/charts/index.yaml (kedacore/charts docs/index.yaml)")
OPENTELEMETRY_COLLECTOR = PinnedChart(
    "opentelemetry-collector", "0.170.0", "https://open-telemetry.github.io/opentelemetry-helm-charts",
    "ed140b332233075c7fd15eaebba571fdf100926f08c0a5a274c7b32895315137",
    "https://open-telemetry.github.io/opentelemetry-helm-charts/index.yaml (gh-pages index.yaml)")
KUBE_PROMETHEUS_STACK = PinnedChart(
    "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts",
    "3bff576f57c88f9fcac3286cc6e0d22ddaf7d7e1829c14a09257359f02ca64c9",
    "https://prometheus-community.github.io/helm-charts/index.yaml (gh-pages index.yaml, created 2026-08-21T06:21:19Z)")
# Not yet pinned: Karpenter publishes to Amazon ECR Public only, which cannot be reached from here; the digest is the
# sha256 of the chart layer (application/vnd.cncf.helm.chart.content.v1.tar+gzip) of the tag's OCI manifest.
KARPENTER_CRD = PinnedChart(
    "karpenter-crd", "1.14.1", "oci://public.ecr.aws/karpenter", None,
    "oci://public.ecr.aws/karpenter/karpenter-crd:1.14.1 (the manifest's chart layer digest)")
KARPENTER = PinnedChart(
    "karpenter", "1.14.1", "oci://public.ecr.aws/karpenter", None,
    "oci://public.ecr.aws/karpenter/karpenter:1.14.1 (the manifest's chart layer digest)")

AWS_LOAD_BALANCER_CONTROLLER = PinnedChart(
    "aws-load-balancer-controller", "3.5.0", "https://aws.github.io/eks-charts",
    "45051f634b33e10baccb3354d0681b7de787c60445e599fa276e0c9aedd4ccd5",
    "https://aws.github.io/eks-charts/index.yaml (aws/eks-charts gh-pages index.yaml, commit c7f9ea5 \"Publish stable charts v0.0.242\")")

# In the order the platform installs them; the keys are the chart names, which `chartRepositories` uses too.
CHARTS: dict[str, PinnedChart] = {c.name: c for c in (KARPENTER_CRD, KARPENTER, AWS_LOAD_BALANCER_CONTROLLER, KEDA, KUBE_PROMETHEUS_STACK,
                                                       OPENTELEMETRY_COLLECTOR, AIRFLOW)}


def is_oci(repository: str) -> bool:
    return repository.startswith("oci://")


def release_source(chart: PinnedChart, repository: str) -> dict[str, Any]:
    """The `chart`, `version` and `repository_opts` of a helm.v3.Release installing `chart` from `repository`.

    An OCI registry names the chart in the reference itself (oci://<registry>/<path>/<chart>); a Helm repository
    is given beside the chart's name."""
    if is_oci(repository):
        return {"chart": f"{repository}/{chart.name}", "version": chart.version}
    return {"chart": chart.name, "version": chart.version, "repository_opts": {"repo": repository}}
