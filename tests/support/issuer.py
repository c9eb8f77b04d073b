"""A stand-in OAuth authorization server for tests: RSA keys made here, a JWKS served on loopback,
and access tokens signed as a real issuer signs them (joserfc)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
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


class TestAuthorizationServer(TestIssuer):
    """The issuer, also as the authorization server an MCP client signs in with (OAuth 2.1):
    metadata (RFC 8414), dynamic client registration (RFC 7591), the authorization-code grant
    with PKCE (S256 only) and resource indicators (RFC 8707). Its one user, `user`, is always
    signed in and always consents, so /authorize answers at once with a redirect carrying the
    code, as a browser session would."""

    __test__ = False

    def __init__(self, user: str = "erin") -> None:
        super().__init__()
        self.user = user
        self.clients: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.authorized: list[dict[str, str]] = []  # each /authorize request's parameters
        self.app = Starlette(
            routes=[
                Route("/jwks", self._jwks),
                Route("/.well-known/oauth-authorization-server", self._metadata),
                Route("/register", self._register, methods=["POST"]),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    def serving_at(self, base: str) -> None:
        """Its issuer identifier is the base URL it is served at."""
        self.issuer = base

    async def _metadata(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "registration_endpoint": f"{self.issuer}/register",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["tasks:read", "tasks:write"],
            }
        )

    async def _register(self, request: Request) -> JSONResponse:
        metadata = await request.json()
        client_id = f"client-{len(self.clients) + 1}"
        self.clients[client_id] = metadata
        return JSONResponse(
            {**metadata, "client_id": client_id, "token_endpoint_auth_method": "none"},
            status_code=201,
        )

    async def _authorize(self, request: Request) -> Response:
        asked = dict(request.query_params)
        self.authorized.append(asked)
        client = self.clients.get(asked.get("client_id", ""))
        redirect = asked.get("redirect_uri", "")
        if (
            client is None
            or redirect not in client.get("redirect_uris", [])
            or asked.get("response_type") != "code"
            or asked.get("code_challenge_method") != "S256"
            or not asked.get("code_challenge")
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = base64.urlsafe_b64encode(os.urandom(18)).decode()
        self.codes[code] = asked
        query = urlencode({"code": code, "state": asked.get("state", ""), "iss": self.issuer})
        return RedirectResponse(f"{redirect}?{query}", status_code=302)

    async def _token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        asked = self.codes.pop(str(form.get("code", "")), None)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if (
            asked is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != asked["client_id"]
            or form.get("redirect_uri") != asked["redirect_uri"]
            or challenge.decode().rstrip("=") != asked["code_challenge"]
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        resource = str(form.get("resource") or asked.get("resource") or AUDIENCE)
        scope = asked.get("scope") or "tasks:read tasks:write"
        access = self.token(self.user, aud=resource, scope=scope)
        return JSONResponse(
            {"access_token": access, "token_type": "Bearer", "expires_in": 300, "scope": scope}
        )
