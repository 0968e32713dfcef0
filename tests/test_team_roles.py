"""Tests the native Airflow role per team: the script, the Job that runs it, and the script run for real against an
Airflow 3.1.7 metadata DB (with the FAB auth manager) in dagtool's environment."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest

from components.team_roles import TEAM_PERMISSIONS, job_name, team_roles_script

FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


class TestScript:
    """Tests the script's text."""

    def test_no_teams(self):
        """Without teams the Job has nothing to do."""
        assert team_roles_script([]) == "echo 'no teams: no roles to create'"

    def test_job_name_follows_the_teams(self):
        """A changed team list is a new Job (its pod template could not change in place)."""
        assert job_name(["analytics"]) != job_name(["analytics", "finance"])
        assert job_name(["analytics"]).startswith("airflow-team-roles-") and len(job_name(["analytics"])) == 27


class TestJob:
    """Tests the Job in the prod plan."""

    def test_job_runs_the_script_after_the_release(self, prod_plan):
        """It runs the script for prod's teams with the Airflow image and the metadata connection, after the release."""
        [job] = prod_plan.of_type("kubernetes:batch/v1:Job")
        assert job.inputs["metadata"] == {"name": job_name(["analytics", "marketing", "finance"]), "namespace": "airflow"}
        [container] = job.inputs["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["bash", "-c", team_roles_script(["analytics", "marketing", "finance"])]
        assert container["image"] == "apache/airflow:3.1.7"
        assert container["env"] == [
            {"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "valueFrom": {"secretKeyRef": {"name": "platform-airflow-metadata", "key": "connection"}}},
            {"name": "AIRFLOW__CORE__AUTH_MANAGER", "value": FAB}]
        assert prod_plan.named("airflow-prod-airflow-release").urn in job.dependencies


@pytest.fixture(scope="module")
def airflow_db(dagtool_bin, tmp_path_factory):
    """A migrated Airflow 3.1.7 metadata DB (SQLite) with the FAB auth manager, and the environment that reaches it."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__AUTH_MANAGER": FAB, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "PATH": f"{dagtool_bin}:{os.environ['PATH']}"}
    migrate = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return env, home / "airflow.db"


class TestAgainstAirflow:
    """Tests the script with Airflow's own CLI on a migrated metadata DB."""

    def run_script(self, env, teams):
        return subprocess.run(["bash", "-c", team_roles_script(teams)], env=env, capture_output=True, text=True, timeout=600)

    def grants(self, db, role):
        with sqlite3.connect(db) as connection:
            return sorted(connection.execute(
                "select v.name, p.name from ab_role r join ab_permission_view_role pvr on pvr.role_id = r.id "
                "join ab_permission_view pv on pv.id = pvr.permission_view_id join ab_view_menu v on v.id = pv.view_menu_id "
                "join ab_permission p on p.id = pv.permission_id where r.name = ?", (role,)).fetchall())

    def test_roles_get_exactly_the_team_permissions(self, airflow_db):
        """Each team's role exists with every permission listed, and none on DAGs: those come from each DAG's access_control."""
        env, db = airflow_db
        result = self.run_script(env, ["analytics", "finance"])
        assert result.returncode == 0, result.stderr[-2000:]
        expected = sorted((resource, action) for resource, actions in TEAM_PERMISSIONS.items() for action in actions)
        for role in ("analytics", "finance"):
            assert self.grants(db, role) == expected
            assert not any(resource == "DAGs" or resource.startswith("DAG:") for resource, _ in self.grants(db, role))

    def test_running_again_changes_nothing(self, airflow_db):
        """The Job may run again (a new team, a retried pod): existing roles are kept as they are."""
        env, db = airflow_db
        assert self.run_script(env, ["analytics", "finance"]).returncode == 0
        before = self.grants(db, "analytics")
        assert self.run_script(env, ["analytics", "finance", "marketing"]).returncode == 0
        assert self.grants(db, "analytics") == before and self.grants(db, "marketing") == before
