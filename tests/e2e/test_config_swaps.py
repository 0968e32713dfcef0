"""Tests that the suite runs the configuration the chart renders: only the options of swaps() differ."""

from __future__ import annotations

from components import celery_config
from tests.e2e.local_airflow import MAX_TASKS_PER_CHILD, swaps


def options(parser) -> dict[tuple[str, str], str]:
    return {(section, key): value for section in parser.sections() for key, value in parser.items(section, raw=True)}


def test_only_the_swapped_options_differ(scenario):
    """airflow.cfg as run differs from the rendered one in exactly the swapped options, to their swapped values."""
    airflow = scenario.airflow
    rendered, running = options(airflow.rendered_cfg()), options(airflow.running_cfg())
    differing = {key for key in rendered.keys() | running.keys() if rendered.get(key) != running.get(key)}
    expected = swaps(airflow.endpoints, airflow.rendered_cfg(), airflow.home)
    assert differing == set(expected)
    assert {key: running[key] for key in differing} == expected


def test_local_settings_are_the_rendered_ones(scenario):
    """The per-process identity module is the chart's ConfigMap entry, byte for byte."""
    airflow = scenario.airflow
    assert (airflow.home / "config" / "airflow_local_settings.py").read_text() == airflow.config_map["airflow_local_settings.py"]


def test_celery_module_differs_only_in_max_tasks(scenario):
    """The Celery module is the program's, with the suite's worker_max_tasks_per_child."""
    airflow = scenario.airflow
    running = (airflow.home / "config" / celery_config.FILE_NAME).read_text()
    [declared] = [o["data"][celery_config.FILE_NAME] for o in airflow.program_objects
                  if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "platform-airflow-celery-config"]
    changed = [(a, b) for a, b in zip(declared.splitlines(), running.splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][1].strip() == f'"worker_max_tasks_per_child": {MAX_TASKS_PER_CHILD},'
