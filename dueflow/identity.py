"""Who a bearer token stands for, for the realtime gateway: Dueflow's own tokens first
(domain.access.OwnTokens, shared with the MCP HTTP transport's TokenUsers), then, when
configured, OAuth access tokens (mcp_server.oauth, loaded only then, so a gateway without OAuth
never loads fastmcp)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.access import OwnTokens, PersonalTokens
from dueflow.settings import Settings
from workers.grants import Identify, Identity

if TYPE_CHECKING:
    from mcp_server.oauth import JwtTokens, OAuthConfig


def bearer_identity(settings: Settings, personal: PersonalTokens) -> Identify:
    """Resolves a bearer token to its user (and personal token id), or None."""
    own = OwnTokens(settings.token_users(), personal)
    oauth = None
    if settings.oauth_issuer is not None:
        oauth = oauth_verifier(oauth_config(settings))

    async def identify(token: str) -> Identity | None:
        if own.knows(token):
            found = await own.bearer(token)
            return None if found is None else Identity(found.user_id, found.token_id)
        if oauth is None:
            return None
        access = await oauth.verify_token(token)
        return Identity(access.client_id) if access is not None else None

    return identify


def oauth_config(settings: Settings) -> OAuthConfig | None:
    """The OAuth resource-server configuration DUEFLOW_OAUTH_* describe; None when it is off."""
    if settings.oauth_issuer is None:
        return None
    from mcp_server.oauth import OAuthConfig

    assert settings.oauth_audience is not None and settings.oauth_jwks_url is not None
    return OAuthConfig(
        issuer=settings.oauth_issuer,
        audience=settings.oauth_audience,
        jwks_url=settings.oauth_jwks_url,
        algorithms=tuple(settings.oauth_algorithm_list()),
        user_claim=settings.oauth_user_claim,
    )


def oauth_verifier(config: OAuthConfig | None) -> JwtTokens | None:
    if config is None:
        return None
    from mcp_server.oauth import JwtTokens

    return JwtTokens(config)
