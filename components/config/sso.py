"""The `sso` key: the company's OpenID Connect provider, which Airflow (FAB) and Grafana log users in through."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.fields import matching
from components.config.model import Model

# No quote or backslash: group names are written into Grafana's JMESPath role expression and Python literals.
SsoGroup = Annotated[str, matching(r"[^'\"\\\s]([^'\"\\\x00-\x1f]{0,254}[^'\"\\\s])?",
                                   "must be an identity-provider group name of 1 to 256 characters, without quotes, backslashes or "
                                   "leading or trailing spaces")]
HttpsEndpoint = Annotated[str, matching(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s?#]*)?",
                                        "must be an https:// URL without a query or fragment, like https://login.example.com/oauth2/v1/token")]
# Scopes the platform always asks for: openid for the ID token, and the claims the user record is made of.
REQUIRED_SCOPES = ("openid", "email", "profile")


class SsoConfig(Model):
    """One OIDC client (confidential, authorization-code flow) with redirect URIs https://airflow.<entry.domain>/auth/oauth-authorized/oidc
    and https://grafana.<entry.domain>/login/generic_oauth; its secret is the stack secret ssoClientSecret."""

    issuer: Annotated[str, matching(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s?#]*[^\s?#/])?",
                                    "must be the provider's https:// issuer URL without a trailing /, like https://login.example.com/realms/data")] = Field(
        description="The OIDC issuer; Airflow reads <issuer>/.well-known/openid-configuration and checks ID tokens against it.")
    client_id: Annotated[str, matching(r"[\w.:@/-]{1,255}", "must be an OIDC client id of 1 to 255 letters, digits or any of . : @ / - _")] = Field(
        description="The client id registered for the platform at the provider (Airflow and Grafana share it).")
    authorization_url: HttpsEndpoint = Field(description="The provider's authorization endpoint (Grafana does not read the discovery document).")
    token_url: HttpsEndpoint = Field(description="The provider's token endpoint.")
    userinfo_url: HttpsEndpoint = Field(description="The provider's userinfo endpoint; it must return preferred_username, email and a groups list.")
    scopes: list[Annotated[str, matching(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}", "must be an OAuth scope (printable, no spaces, quotes or backslashes)")]] = Field(
        default_factory=lambda: [*REQUIRED_SCOPES, "groups"], min_length=3, max_length=20,
        description="Scopes requested at login; openid, email and profile are required, plus whatever makes the provider release the groups claim.")
    session_hours: int = Field(
        8, ge=1, le=24,
        description="How long an Airflow login lasts ([api_auth] jwt_expiration_time; FAB does not refresh it). Roles are re-synced at "
                    "each login, so a user removed from a group keeps its access at most this long.")
    admin_groups: list[SsoGroup] = Field(
        min_length=1, max_length=20,
        description="Groups whose members are Airflow Admin and Grafana Admin (the platform team). Everyone else gets their teams' roles "
                    "(teams[].ssoGroups) in Airflow, Viewer in Grafana.")
