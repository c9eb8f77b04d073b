"""OAuth 2.1 resource server: bearer JWT access tokens from one configured authorization server.

A token is accepted when its signature verifies with a key of the issuer's JWKS (fetched, cached
and fetched again when a token names a key id not yet seen, so key rotation needs no restart),
its `alg` is one of the pinned algorithms (never `none`, never HMAC with a public key), and its
claims hold: `iss` the issuer, `aud` the resource (RFC 8707), `exp` in the future and `nbf` in
the past within a small leeway. The user is a configured claim (`sub` by default); the scopes
are the `scope` (space-separated) or `scp` (list) claim's tasks:read and tasks:write.

The JOSE work is joserfc's; nothing here touches a signature byte.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastmcp.server.auth import AccessToken, TokenVerifier
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from domain.access import SCOPES

log = logging.getLogger(__name__)

METADATA_PATH = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True)
class OAuthConfig:
    """DUEFLOW_OAUTH_*: who issues the tokens, for which resource, signed how."""

    issuer: str
    audience: str  # the resource: this MCP endpoint's public URL
    jwks_url: str
    algorithms: Sequence[str] = ("RS256",)
    user_claim: str = "sub"
    leeway_seconds: int = 60
    jwks_refresh_seconds: float = 10.0  # at most one fetch this often for an unknown key id
    jwks_ttl_seconds: float = 600.0

    def metadata_url(self) -> str:
        """Where this resource's metadata is published (RFC 9728 section 3.1: the well-known
        path goes between the host and the resource's path)."""
        parts = urlsplit(self.audience)
        return f"{parts.scheme}://{parts.netloc}{METADATA_PATH}{parts.path.rstrip('/')}"

    def metadata(self) -> dict[str, Any]:
        """The protected-resource metadata document (RFC 9728)."""
        return {
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "scopes_supported": list(SCOPES),
            "bearer_methods_supported": ["header"],
            "resource_name": "Dueflow",
            "resource_signing_alg_values_supported": list(self.algorithms),
        }


@dataclass
class _Keys:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")
    tried_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwtTokens(TokenVerifier):
    """Verifies JWT access tokens as the module's docstring says; None for any other token."""

    def __init__(self, config: OAuthConfig, http: httpx.AsyncClient | None = None) -> None:
        super().__init__()
        self.config = config
        self._http = http
        self._keys = _Keys()

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.count(".") != 2:
            return None
        try:
            header = extract_compact(token.encode()).protected
        except (JoseError, ValueError):
            return None
        if header.get("alg") not in self.config.algorithms:
            log.info("refused a JWT signed with %r", str(header.get("alg"))[:20])
            return None
        keys = await self._key_set(str(header.get("kid", "")))
        if keys is None:
            return None
        try:
            claims = jwt.decode(token, keys, algorithms=list(self.config.algorithms)).claims
            jwt.JWTClaimsRegistry(
                leeway=self.config.leeway_seconds,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.audience},
                exp={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            log.info("refused a JWT: %s", type(exc).__name__)
            return None
        user = claims.get(self.config.user_claim)
        if not isinstance(user, str) or not 1 <= len(user) <= 200:
            return None
        return AccessToken(
            token=token,
            client_id=user,
            scopes=_scopes(claims),
            # the SDK refuses an AccessToken past expires_at: the leeway applies there too
            expires_at=int(claims["exp"]) + self.config.leeway_seconds,
            claims={"sub": user, "iss": claims["iss"]},
        )

    async def _key_set(self, kid: str) -> KeySet | None:
        """The issuer's keys, fetched again when stale or when `kid` is not among them (at most
        once per jwks_refresh_seconds)."""
        state = self._keys
        now = time.monotonic()
        known = state.keys is not None and (not kid or _has(state.keys, kid))
        if known and now - state.fetched_at < self.config.jwks_ttl_seconds:
            return state.keys
        async with state.lock:
            if now - state.tried_at >= self.config.jwks_refresh_seconds:
                state.tried_at = now
                fetched = await self._fetch()
                if fetched is not None:
                    state.keys, state.fetched_at = fetched, now
        return state.keys

    async def _fetch(self) -> KeySet | None:
        try:
            if self._http is not None:
                response = await self._http.get(self.config.jwks_url)
            else:
                async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
                    response = await http.get(self.config.jwks_url)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            log.warning("could not fetch the JWKS at %s: %s", self.config.jwks_url, exc)
            return None


def _has(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except JoseError:
        return False
    return True


def _scopes(claims: dict[str, Any]) -> list[str]:
    granted = claims.get("scope", "")
    names = granted.split() if isinstance(granted, str) else []
    listed = claims.get("scp")
    if isinstance(listed, list):
        names += [str(name) for name in listed]
    elif isinstance(listed, str):
        names += listed.split()
    return [scope for scope in SCOPES if scope in names]
