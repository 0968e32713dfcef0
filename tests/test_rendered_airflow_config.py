"""Tests the airflow.cfg the chart renders from the program's values (the file every Airflow container mounts), and the
Jobs around it: migrations and the admin user as plain Jobs, and the metadata DB cleanup CronJob's exact command (with and
without --skip-archive)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import stack_config
from tests.rendered import airflow_cfg, container, env, pod
from tools import render
from tools.offline import run_stack_config


@pytest.mark.parametrize("variant, concurrency, parallelism", [("dev", "4", "32"), ("prod", "8", "256")])
def test_celery_recycling_and_capacity(rendering, variant, concurrency, parallelism):
    """Celery reads the generated module that extends the provider's defaults, beside the stack's concurrency; the scheduler
    runs at most the stack's parallelism."""
    cfg = airflow_cfg(rendering(variant))
    assert (cfg["celery"]["celery_config_options"], cfg["celery"]["worker_concurrency"]) == (
        "airflow_platform_celery.CELERY_CONFIG", concurrency)
    assert (cfg["core"]["parallelism"], cfg["core"]["load_examples"]) == (parallelism, "False")


@pytest.mark.parametrize("variant, executor", [("prod", "CeleryExecutor"), ("prod-celery-and-kubernetes", "CeleryExecutor,KubernetesExecutor")])
def test_executor(rendering, variant, executor):
    """The executor list Airflow 3 runs, with the FAB auth manager the team roles rely on and a standalone DAG processor."""
    cfg = airflow_cfg(rendering(variant))
    assert (cfg["core"]["executor"], cfg["core"]["auth_manager"], cfg["scheduler"]["standalone_dag_processor"]) == (
        executor, "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager", "True")


def test_logs_and_secrets_go_to_aws(rendering):
    """Task logs go to the DAG bucket's logs/ prefix; connections and variables come from Secrets Manager under the prefix."""
    prod = rendering("prod")
    cfg = airflow_cfg(prod)
    assert dict(cfg["logging"]) == {"colored_console_log": "False", "delete_local_logs": "True", "remote_logging": "True",
                                    "remote_base_log_folder": f"s3://{prod.plan.outputs['dagBucket']}/logs", "remote_log_conn_id": "aws_default"}
    assert cfg["secrets"]["backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    assert json.loads(cfg["secrets"]["backend_kwargs"]) == {
        "connections_prefix": "airflow/connections", "variables_prefix": "airflow/variables", "region_name": "eu-west-1"}


def test_connection_pools_match_the_capacity_contract(rendering):
    """The pool sizes and API workers the capacity contract counted are the ones Airflow is configured with."""
    prod = rendering("prod")
    cfg = airflow_cfg(prod)
    assert (cfg["database"]["sql_alchemy_pool_size"], cfg["database"]["sql_alchemy_max_overflow"], cfg["api"]["workers"]) == ("5", "10", "4")
    airflow = prod.cfg.airflow
    assert (airflow.sql_alchemy_pool_size, airflow.sql_alchemy_max_overflow, airflow.api_server_workers) == (5, 10, 4)


def cleanup_container(release: render.RenderedRelease) -> dict:
    return container(release.named("CronJob", "airflow-database-cleanup"), "database-cleanup")


@pytest.mark.parametrize("variant, schedule, days", [("dev", "0 3 * * *", 14), ("prod", "0 2 * * 0", 90)])
def test_cleanup_cronjob_command(rendering, variant, schedule, days):
    """The metadata DB is cleaned on the stack's schedule of rows older than its retention, without a prompt, and the purged
    rows are deleted rather than archived into _airflow_deleted__* tables."""
    cronjob = rendering(variant).releases["airflow"].named("CronJob", "airflow-database-cleanup")
    assert cronjob["spec"]["schedule"] == schedule
    cleanup = container(cronjob, "database-cleanup")
    assert (cleanup["command"], cleanup["args"]) == (["bash"], ["-c", (
        f'CLEAN_TS=$(date -d "-{days} days" +"%Y-%m-%dT%H:%M:%S"); echo "Cleaning up metadata DB entries older than ${{CLEAN_TS}}"; '
        'exec airflow db clean --clean-before-timestamp "${CLEAN_TS}" --yes --skip-archive --verbose')])
    assert env(cleanup, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") == {"secretKeyRef": {"name": "platform-airflow-metadata", "key": "connection"}}


def test_cleanup_archives_when_skip_archive_is_off(rendering):
    """With airflow.databaseCleanup.skipArchive false the chart renders the same command without --skip-archive."""
    config = stack_config("dev")
    config["airflow-platform:airflow"]["databaseCleanup"]["skipArchive"] = False
    plan = run_stack_config(config, "dev")
    [release] = [r for r in render.releases(plan) if r.inputs["name"] == "airflow"]
    archiving = cleanup_container(render.render_release(release.inputs, render.kubernetes_version(plan), []))
    skipping = cleanup_container(rendering("dev").releases["airflow"])
    assert archiving["args"] == ["-c", (
        'CLEAN_TS=$(date -d "-14 days" +"%Y-%m-%dT%H:%M:%S"); echo "Cleaning up metadata DB entries older than ${CLEAN_TS}"; '
        'exec airflow db clean --clean-before-timestamp "${CLEAN_TS}" --yes --verbose')]
    assert archiving["args"][1] == skipping["args"][1].replace(" --skip-archive", "")


@pytest.mark.parametrize("job", ["airflow-run-airflow-migrations", "airflow-create-user"])
def test_jobs_are_plain_jobs(rendering, job):
    """Migrations and the admin user are ordinary Jobs the release waits for, not Helm hooks that would deadlock with it."""
    rendered = rendering("prod").releases["airflow"].named("Job", job)
    assert not [k for k in (rendered["metadata"].get("annotations") or {}) if k.startswith("helm.sh/hook")]


def test_admin_password_only_from_its_secret(rendering):
    """The admin user Job takes its password from the generated Secret, never from its arguments or values."""
    prod = rendering("prod")
    job = prod.releases["airflow"].named("Job", "airflow-create-user")
    create = container(job, "create-user")
    assert env(create, "AIRFLOW_PLATFORM_ADMIN_PASSWORD") == {"secretKeyRef": {"name": "platform-airflow-admin-password", "key": "password"}}
    [secret] = [s for s in prod.declared("Secret") if s["metadata"]["name"] == "platform-airflow-admin-password"]
    assert secret["stringData"]["password"] not in json.dumps(pod(job))
