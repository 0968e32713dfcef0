"""Reading rendered objects in the tests: the pod template of a workload, a container, an environment variable."""

from __future__ import annotations

import configparser
from typing import Any

# The Deployments of the Airflow release that load DAG files, by the chart's component names.
DAG_READING = {"dagProcessor": "airflow-dag-processor", "triggerer": "airflow-triggerer", "workers": "airflow-worker"}


def pod(workload: dict) -> dict:
    """The pod template of a Deployment, StatefulSet, Job or CronJob."""
    spec = workload["spec"]
    return spec["jobTemplate"]["spec"]["template"] if workload["kind"] == "CronJob" else spec["template"]


def container(workload: dict, name: str, init: bool = False) -> dict:
    [found] = [c for c in pod(workload)["spec"]["initContainers" if init else "containers"] if c["name"] == name]
    return found


def names(workload: dict, init: bool = False) -> list[str]:
    return [c["name"] for c in pod(workload)["spec"].get("initContainers" if init else "containers", [])]


def env(container_spec: dict, name: str) -> Any:
    """The value, or the valueFrom, of one environment variable."""
    [found] = [e for e in container_spec.get("env", []) if e["name"] == name]
    return found.get("value", found.get("valueFrom"))


def selects(selector: dict, labels: dict) -> bool:
    """Whether a label selector (matchLabels only, as the charts write them) selects pods with these labels."""
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def airflow_cfg(result) -> configparser.ConfigParser:
    """The airflow.cfg the Airflow release renders into its ConfigMap, which every Airflow container mounts."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(result.releases["airflow"].named("ConfigMap", "airflow-config")["data"]["airflow.cfg"])
    return parser
