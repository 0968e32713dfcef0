"""Tests the keys of what the platform records: network.flowLogRetentionDays, database.slowStatementMs,
database.logRetentionDays and dagStorage.auditRetentionDays; their defaults, and the sentence each mistake gets."""

from __future__ import annotations

import pytest

from components.config import parse
from tests.test_config import MINIMAL, PROD_READY, refusal

# What every retention that CloudWatch Logs does not offer is told, after the key.
NOT_OFFERED = ("must be one of the CloudWatch Logs retention periods: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, "
               "1827, 2192, 2557, 2922, 3288, 3653")


def recorded(raw: dict) -> tuple[int, int, int, int]:
    cfg = parse(raw)
    return (cfg.network.flow_log_retention_days, cfg.database.slow_statement_ms, cfg.database.log_retention_days,
            cfg.dag_storage.audit_retention_days)


class TestDefaults:
    """Tests what a stack records without setting the keys."""

    def test_outside_production(self):
        """Flow logs two weeks, statements of a second or more, DB logs a month, DAG writes a year."""
        assert recorded(MINIMAL) == (14, 1000, 30, 365)

    def test_in_production(self):
        """Production keeps flow logs 90 days; the rest is the same."""
        assert recorded(PROD_READY) == (90, 1000, 30, 365)

    def test_set_values_are_kept(self):
        """Each key is taken as written."""
        assert recorded({**PROD_READY, "network": {"flowLogRetentionDays": 30}, "database": {"slowStatementMs": 100, "logRetentionDays": 3653},
                         "dagStorage": {"auditRetentionDays": 90}}) == (30, 100, 3653, 90)


REFUSALS = [
    ("flow-log-retention-not-offered", {"network": {"flowLogRetentionDays": 10}},
     f"Config key 'airflow-platform:network.flowLogRetentionDays' {NOT_OFFERED} (got 10)."),
    ("flow-log-retention-as-text", {"network": {"flowLogRetentionDays": "90"}},
     "Config key 'airflow-platform:network.flowLogRetentionDays' must be an integer (got \"90\")."),
    ("slow-statements-below-range", {"database": {"slowStatementMs": 50}},
     "Config key 'airflow-platform:database.slowStatementMs' must be an integer from 100 to 600000 (got 50)."),
    ("slow-statements-off", {"database": {"slowStatementMs": -1}},
     "Config key 'airflow-platform:database.slowStatementMs' must be an integer from 100 to 600000 (got -1)."),
    ("slow-statements-above-range", {"database": {"slowStatementMs": 700000}},
     "Config key 'airflow-platform:database.slowStatementMs' must be an integer from 100 to 600000 (got 700000)."),
    ("slow-statements-with-unit", {"database": {"slowStatementMs": "1s"}},
     "Config key 'airflow-platform:database.slowStatementMs' must be an integer from 100 to 600000 (got \"1s\")."),
    ("db-log-retention-not-offered", {"database": {"logRetentionDays": 10}},
     f"Config key 'airflow-platform:database.logRetentionDays' {NOT_OFFERED} (got 10)."),
    ("audit-retention-zero", {"dagStorage": {"auditRetentionDays": 0}},
     "Config key 'airflow-platform:dagStorage.auditRetentionDays' must be an integer from 1 to 3653 (got 0)."),
    ("audit-retention-beyond-ten-years", {"dagStorage": {"auditRetentionDays": 4000}},
     "Config key 'airflow-platform:dagStorage.auditRetentionDays' must be an integer from 1 to 3653 (got 4000)."),
]


@pytest.mark.parametrize("change, sentence", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_refused_with_sentence(change, sentence):
    """The exact sentence for each kind of mistake."""
    assert refusal({**MINIMAL, **change}) == sentence


PRODUCTION_REFUSALS = [
    ("flow-logs-two-weeks", {"network": {"flowLogRetentionDays": 14}},
     "Config key 'airflow-platform:network.flowLogRetentionDays' must be at least 30 in production, so a flow can still be traced weeks "
     "after the incident it belongs to (got 14)."),
    ("audit-a-month", {"dagStorage": {"auditRetentionDays": 30}},
     "Config key 'airflow-platform:dagStorage.auditRetentionDays' must be at least 90 in production, so a DAG change found a quarter "
     "later still shows who wrote it (got 30)."),
]


@pytest.mark.parametrize("change, sentence", [r[1:] for r in PRODUCTION_REFUSALS], ids=[r[0] for r in PRODUCTION_REFUSALS])
def test_production_refusal(change, sentence):
    """Production keeps flow logs at least a month and the DAG audit at least a quarter."""
    assert refusal({**PROD_READY, **change}) == sentence


@pytest.mark.parametrize("change", [r[1] for r in PRODUCTION_REFUSALS], ids=[r[0] for r in PRODUCTION_REFUSALS])
def test_same_settings_allowed_outside_production(change):
    """Outside production the same settings are accepted."""
    parse({**PROD_READY, "environment": "staging", **change})
