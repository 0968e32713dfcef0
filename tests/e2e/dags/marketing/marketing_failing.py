"""Three tasks that fail, and the company notifier on the DAG."""

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG
from airflow_platform_notify import on_failure


def fail():
    raise RuntimeError("this task fails on purpose")


with DAG(dag_id="marketing_failing", start_date=datetime(2026, 1, 1), schedule=None, catchup=False,
         tags=["marketing"], default_args={"owner": "marketing-data@example.com", "retries": 0},
         on_failure_callback=on_failure()):
    for number in range(3):
        PythonOperator(task_id=f"fail_{number}", python_callable=fail)
