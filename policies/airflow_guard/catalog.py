"""Every policy of the pack, in the order they are reported."""

from __future__ import annotations

from . import airflow, eks, encryption, iam, kms, network, observability, rds, s3, tags  # noqa: F401  (they register)
from .model import REGISTRY, Policy

POLICIES: tuple[Policy, ...] = tuple(REGISTRY)
BY_NAME: dict[str, Policy] = {p.name: p for p in POLICIES}
