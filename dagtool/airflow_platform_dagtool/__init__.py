"""dagtool: check a team's Airflow DAGs against the platform's guardrails, and publish them to its prefix."""
