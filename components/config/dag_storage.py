"""The `dagStorage` key: the DAG bucket."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from components.config.fields import matching
from components.config.model import Model


class DagStorageConfig(Model):
    noncurrent_version_days: int = Field(30, ge=1, le=3650, description="Days an overwritten or deleted DAG version is kept before it expires.")
    github_oidc_provider_arn: Optional[Annotated[str, matching(
        r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com",
        "must be the ARN of the account's GitHub OIDC provider (…:oidc-provider/token.actions.githubusercontent.com)")]] = Field(
        None, description="The account's existing GitHub Actions OIDC provider; unset creates it (an account holds only one).")
    audit_retention_days: int = Field(
        365, ge=1, le=3653,
        description="Days the CloudTrail records of every write and delete under teams/ and shared/ are kept in the audit bucket "
                    "(at least 90 in production).")
