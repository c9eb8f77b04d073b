"""The ASGI app of the HTTP transports: fastmcp's app for the server, with its Host and Origin
guard always on (DNS rebinding) and bearer-token refusals that say what is wrong."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import fastmcp
from fastmcp import FastMCP
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.adapters.calendar_files import CalendarFiles
from domain.adapters.metrics import AUTH_FAILURES, MetricsFirst, Scrape
from mcp_server.calendar_feed import MASKED, feed_route
from mcp_server.oauth import METADATA_PATH, OAuthConfig

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MISSING_TOKEN = (
    "missing bearer token: send `Authorization: Bearer <token>` with a personal token"
    " (`dueflow tokens create`) or one of the server's DUEFLOW_TOKENS"
)
UNKNOWN_TOKEN = (
    "unknown bearer token: this server does not accept the token sent (unknown, revoked or"
    " expired); ask its operator for a new one (`dueflow tokens create`)"
)
OAUTH_MISSING = (
    "missing bearer token: send `Authorization: Bearer <access token>` from the authorization"
    " server named in the protected-resource metadata"
)
OAUTH_INVALID = (
    "invalid access token: not accepted (expired, revoked, for another resource, or from another"
    " issuer); get a new one from the authorization server"
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

    def __init__(
        self, app: ASGIApp, protected: Sequence[str], resource_metadata: str | None = None
    ) -> None:
        self.app = app
        self.protected = tuple(protected)
        # with OAuth, every challenge points at the metadata (RFC 9728 section 5.1)
        self.resource_metadata = resource_metadata

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
        oauth = self.resource_metadata is not None
        pointer = f', resource_metadata="{self.resource_metadata}"' if oauth else ""
        if authorization[:7].lower() == "bearer " and authorization[7:].strip():
            AUTH_FAILURES.labels("invalid_token").inc()
            error, description = "invalid_token", OAUTH_INVALID if oauth else UNKNOWN_TOKEN
            challenge = (
                f'Bearer realm="dueflow"{pointer}, error="invalid_token",'
                f' error_description="{description.split(":")[0]}"'
            )
        else:
            # RFC 6750 section 3.1: a request without credentials gets a challenge with no error
            AUTH_FAILURES.labels("missing_token").inc()
            error, description = "invalid_request", OAUTH_MISSING if oauth else MISSING_TOKEN
            challenge = f'Bearer realm="dueflow"{pointer}'
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


# how much of a refused body (in multiples of the limit) is read and dropped before answering
_DRAINED = 16


class BodyLimit:
    """Answers a request whose body is larger than `max_bytes` with 413 and a JSON-RPC error
    (code -32600, id null), before the MCP transport reads any of it: the body is read here, up
    to the limit, and handed on whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_bytes:
                # the rest is read and dropped (up to a bound), so the client gets to read the
                # answer instead of a reset connection
                while more and size <= _DRAINED * self.max_bytes:
                    message = await receive()
                    size += len(message.get("body", b""))
                    more = message["type"] == "http.request" and message.get("more_body", False)
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not more:
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], then=receive), send)

    async def _refuse(self, send: Send) -> None:
        reason = (
            f"Request too large: bodies over {self.max_bytes} bytes are refused"
            " (DUEFLOW_MAX_REQUEST_BYTES); send less per call"
        )
        body = json.dumps(
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": reason}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive that answers `messages` first, then waits on `then` (the disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


class RefusalLog:
    """Logs each request the transport refused before any tool ran (401, 403, 413, 421): its
    status, method, path, Host and Origin, never a header that could hold a secret."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _REFUSED:
                headers = Headers(scope=scope)
                path = str(scope.get("path", ""))
                log.info(
                    "refused %s %s with %d (Host %r, Origin %r)",
                    scope.get("method"),
                    MASKED if path.startswith("/calendar/") else path,  # a feed's path is its key
                    message["status"],
                    headers.get("host", "")[:100],
                    headers.get("origin", "")[:100],
                )
            await send(message)

        await self.app(scope, receive, sending)


_REFUSED = frozenset({401, 403, 413, 421})


def http_app(
    server: FastMCP,
    transport: Literal["http", "sse"],
    path: str,
    reachable: Reachable,
    max_request_bytes: int = 1_048_576,
    oauth: OAuthConfig | None = None,
    scrape: Scrape | None = None,
    calendar: CalendarFiles | None = None,
) -> Starlette:
    """The app `dueflow serve --transport http|sse` serves: the MCP endpoint at `path` behind
    the Host/Origin guard, the request-size limit and, when the server has auth, the bearer
    refusals; with `scrape`, GET /metrics in front of all of them."""
    protected = [path] if transport == "http" else [path, fastmcp.settings.message_path]
    middleware = [Middleware(BodyLimit, max_bytes=max_request_bytes)]
    if server.auth:
        metadata = oauth.metadata_url() if oauth is not None else None
        middleware.append(
            Middleware(BearerRefusals, protected=protected, resource_metadata=metadata)
        )
    app = server.http_app(
        path=path,
        transport=transport,
        middleware=middleware,
        # True checks every request, not only those addressed to loopback ("auto")
        host_origin_protection=True,
        allowed_hosts=reachable.host_names(),
        allowed_origins=list(reachable.origins),
    )
    if oauth is not None:
        document = oauth.metadata()

        async def protected_resource(request: Request) -> JSONResponse:
            return JSONResponse(document, headers={"Cache-Control": "max-age=300"})

        resource_path = urlsplit(oauth.audience).path.rstrip("/")
        for route in {METADATA_PATH, METADATA_PATH + resource_path}:
            app.router.routes.insert(0, Route(route, protected_resource, methods=["GET"]))
    if calendar is not None:
        app.router.routes.insert(0, feed_route(calendar))
    app.add_middleware(RefusalLog)  # it sees the Host/Origin guard's answers too
    if scrape is not None:
        app.add_middleware(MetricsFirst, scrape=scrape)  # outermost: see MetricsFirst
    return app
