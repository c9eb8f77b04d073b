"""The ASGI app of the HTTP transports: fastmcp's app for the server, with its Host and Origin
guard always on (DNS rebinding) and bearer-token refusals that say what is wrong."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import fastmcp
from fastmcp import FastMCP
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MISSING_TOKEN = (
    "missing bearer token: send `Authorization: Bearer <token>` with a token from the server's"
    " DUEFLOW_TOKENS"
)
UNKNOWN_TOKEN = (
    "unknown bearer token: this server does not know the token sent; use one from its"
    " DUEFLOW_TOKENS (the operator configures tokens; the server issues none)"
)


@dataclass(frozen=True)
class Reachable:
    """The Host names and browser Origins the HTTP transports answer (DNS-rebinding guard)."""

    bound_host: str
    hosts: Sequence[str] = field(default_factory=tuple)
    origins: Sequence[str] = field(default_factory=tuple)

    def host_names(self) -> list[str]:
        """Loopback names, the bound address unless it is 0.0.0.0 or ::, and those configured."""
        bound = [] if self.bound_host in ("0.0.0.0", "::", "") else [self.bound_host]
        return [*LOOPBACK_HOSTS, *bound, *self.hosts]


class BearerRefusals:
    """Answers a request to a protected path without a valid bearer token with 401, a JSON body
    ({"error", "error_description"}) and a `WWW-Authenticate: Bearer` challenge (RFC 6750)."""

    def __init__(self, app: ASGIApp, protected: Sequence[str]) -> None:
        self.app = app
        self.protected = tuple(protected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or not path.startswith(self.protected)
            or isinstance(scope.get("user"), AuthenticatedUser)
        ):
            await self.app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization", "")
        if authorization[:7].lower() == "bearer " and authorization[7:].strip():
            error, description = "invalid_token", UNKNOWN_TOKEN
            challenge = (
                'Bearer realm="dueflow", error="invalid_token",'
                ' error_description="unknown bearer token"'
            )
        else:
            # RFC 6750 section 3.1: a request without credentials gets a challenge with no error
            error, description = "invalid_request", MISSING_TOKEN
            challenge = 'Bearer realm="dueflow"'
        body = json.dumps({"error": error, "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def http_app(
    server: FastMCP, transport: Literal["http", "sse"], path: str, reachable: Reachable
) -> Starlette:
    """The app `dueflow serve --transport http|sse` serves: the MCP endpoint at `path` behind
    the Host/Origin guard and, when the server has auth, the bearer refusals."""
    protected = [path] if transport == "http" else [path, fastmcp.settings.message_path]
    middleware = [Middleware(BearerRefusals, protected=protected)] if server.auth else []
    return server.http_app(
        path=path,
        transport=transport,
        middleware=middleware,
        # True checks every request, not only those addressed to loopback ("auto")
        host_origin_protection=True,
        allowed_hosts=reachable.host_names(),
        allowed_origins=list(reachable.origins),
    )
