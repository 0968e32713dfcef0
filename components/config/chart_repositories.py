"""The `chartRepositories` key: where each Helm chart is installed from."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from components.charts import CHARTS, PinnedChart
from components.config.fields import chart_repository
from components.config.model import Model


ChartRepository = Annotated[str, AfterValidator(chart_repository)]


def _repository(chart: str, alias: str | None = None) -> Any:
    official = CHARTS[chart].repository
    return Field(official, alias=alias, description=f"Where {chart} {CHARTS[chart].version} is installed (and `make charts` pulls it) from: "
                                                    "a Helm repository serving the official archive, or an oci:// registry path holding it.")


class ChartRepositoriesConfig(Model):
    """Where each chart comes from: its official repository by default, or your mirror (Artifactory, Nexus, ECR)."""

    karpenter_crd: ChartRepository = _repository("karpenter-crd", "karpenter-crd")
    karpenter: ChartRepository = _repository("karpenter")
    aws_load_balancer_controller: ChartRepository = _repository("aws-load-balancer-controller", "aws-load-balancer-controller")
    airflow: ChartRepository = _repository("airflow")
    keda: ChartRepository = _repository("keda")
    opentelemetry_collector: ChartRepository = _repository("opentelemetry-collector", "opentelemetry-collector")
    kube_prometheus_stack: ChartRepository = _repository("kube-prometheus-stack", "kube-prometheus-stack")

    def of(self, chart: PinnedChart) -> str:
        return getattr(self, chart.name.replace("-", "_"))
