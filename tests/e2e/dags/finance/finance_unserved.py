"""A task on a queue no worker listens to: it stays queued."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

with DAG(dag_id="finance_unserved", start_date=datetime(2026, 1, 1), schedule=None, catchup=False,
         tags=["finance"], default_args={"owner": "finance-data@example.com"}):
    PythonOperator(task_id="waits", python_callable=lambda: None, queue="unserved")
