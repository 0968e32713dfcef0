"""Every policy of the pack, in the order they are reported (and listed in docs/policies.md)."""

from __future__ import annotations

# Importing a module registers its policies; this order is the report's (AWS first, then what runs on the cluster; the
# entry, which is both, after the Helm policies it builds on).
from . import s3, iam, kms, network, rds, eks, encryption, audit, helm, images, entry, sso, airflow, karpenter, observability, tags  # noqa: F401,I001
from .model import REGISTRY, Policy

POLICIES: tuple[Policy, ...] = tuple(REGISTRY)
BY_NAME: dict[str, Policy] = {p.name: p for p in POLICIES}
