"""The airflow-platform guardrails: pure checks over resources, shared by the CrossGuard pack and the offline plan."""
