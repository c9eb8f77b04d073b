"""A stand-in OAuth authorization server for tests: RSA keys made here, a JWKS served on loopback,
and access tokens signed as a real issuer signs them (joserfc)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

AUDIENCE = "https://tasks.example.org/mcp"


class TestIssuer:
    """Publishes the public halves of its current keys at /jwks; `token()` signs claims."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, issuer: str = "https://login.example.org/realms/team") -> None:
        self.issuer = issuer
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "key-1"})]
        self.fetches = 0
        self.app = Starlette(routes=[Route("/jwks", self._jwks)])

    async def _jwks(self, request: Request) -> JSONResponse:
        self.fetches += 1
        return JSONResponse(KeySet(list(self.keys)).as_dict(private=False))

    def rotate(self, kid: str) -> RSAKey:
        """A new signing key, published beside the old ones."""
        key = RSAKey.generate_key(2048, parameters={"kid": kid})
        self.keys.append(key)
        return key

    def claims(self, user: str = "alice", **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": user,
            "iat": now,
            "exp": now + 300,
            "scope": "tasks:read tasks:write",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self, user: str = "alice", *, key: RSAKey | None = None, alg: str = "RS256", **claims: Any
    ) -> str:
        signing = key or self.keys[0]
        header = {"alg": alg, "kid": signing.kid, "typ": "at+jwt"}
        return jwt.encode(header, self.claims(user, **claims), signing, algorithms=[alg])


def unsigned(claims: dict[str, Any]) -> str:
    """A token with `alg: none` and no signature."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
