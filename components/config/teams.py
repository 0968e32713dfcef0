"""The `teams` key: the product teams that publish DAGs."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from components.config.fields import DnsName, SlackChannel, TagValue, matching
from components.config.model import Model
from components.config.sso import SsoGroup


class TeamConfig(Model):
    name: DnsName = Field(description="Team name, DNS-safe (a-z, 0-9, '-'; at most 32): the DAG prefix teams/<name>/ and the dag_id prefix.")
    owner: TagValue = Field(description="Who answers for the team's DAGs (an e-mail or a handle).")
    repository: Annotated[str, matching(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "must be a GitHub repository as owner/name, like example-org/analytics-dags")] = Field(
        description="The team's DAG repository; only its CI may assume the team's role.")
    branch: Annotated[str, matching(r"[A-Za-z0-9._/-]{1,100}", "must be a git branch name, like main")] = Field(
        "main", description="The only branch whose CI may publish (GitHub OIDC subject repo:<repository>:ref:refs/heads/<branch>).")
    slack_channel: Optional[SlackChannel] = Field(
        None, description="The team's Slack channel: alerts labelled team=<name> go there (unset: to the platform channel).")
    sso_groups: list[SsoGroup] = Field(
        default_factory=list, max_length=20,
        description="Identity-provider groups whose members get the team's Airflow role at each login (with sso set). Unset: "
                    "nobody holds the role until a group is mapped.")
