"""What the platform and the teams agree on. The platform's program holds the same names (components/names.py);
a test keeps the two equal, since this package is installed without the program."""

TEAMS_PREFIX = "teams"
SHARED_PREFIX = "shared"
# Airflow's default owner: a DAG that still has it has no real owner.
DEFAULT_OWNER = "airflow"
# What publish keeps beside a team's DAGs: their content hashes and the ETags S3 gave them (ETags of
# SSE-KMS objects are not content hashes, so the hashes must be kept somewhere).
MANIFEST = ".dagtool-manifest.json"


def team_prefix(team: str) -> str:
    return f"{TEAMS_PREFIX}/{team}/"


def dag_id_prefix(team: str) -> str:
    """Every DAG of a team is named <team>_...; team names have no underscore, so the team is unambiguous."""
    return f"{team}_"
