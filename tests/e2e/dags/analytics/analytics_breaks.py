"""A DAG whose file the scenario breaks mid-run, as a bad edit would: an import error."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="analytics_breaks", start_date=datetime(2026, 1, 1), schedule=None, catchup=False,
         tags=["analytics"], default_args={"owner": "analytics@example.com"}):
    EmptyOperator(task_id="nothing")
