"""Tests the databaseCleanup CronJob's command, run as the chart renders it, on the DB the run filled."""

from __future__ import annotations

from tests.e2e.local_airflow import main_container

AGED = "now() - interval '100 days'"  # older than prod's retentionDays (90)


def test_cleanup_deletes_old_rows_and_archives_nothing(scenario):
    """Rows older than the retention go, recent ones stay, and no _airflow_deleted__* archive table is left."""
    sql = scenario.sql
    sql(f"UPDATE log SET dttm = {AGED} WHERE id IN (SELECT id FROM log ORDER BY id LIMIT (SELECT count(*) / 2 FROM log))")
    sql(f"UPDATE job SET latest_heartbeat = {AGED}, start_date = {AGED} WHERE state <> 'running'")
    aged_jobs = int(sql(f"SELECT count(*) FROM job WHERE latest_heartbeat < now() - interval '95 days'"))
    recent_logs = int(sql("SELECT count(*) FROM log WHERE dttm > now() - interval '1 day'"))
    assert aged_jobs > 0 and recent_logs > 0
    cronjob = scenario.airflow.workload("CronJob", "airflow-database-cleanup")
    container = main_container(cronjob, "database-cleanup")
    assert "--skip-archive" in container["args"][-1]
    scenario.airflow.run_job("database-cleanup", container)
    assert sql("SELECT count(*) FROM log WHERE dttm < now() - interval '95 days'") == "0"
    assert sql("SELECT count(*) FROM job WHERE latest_heartbeat < now() - interval '95 days'") == "0"
    assert int(sql("SELECT count(*) FROM log WHERE dttm > now() - interval '1 day'")) >= recent_logs
    assert sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_airflow\\_deleted\\_\\_%'") == "0"
