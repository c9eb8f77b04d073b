"""The API app's internal routes, for Dapr service invocation by the workers.

`POST /internal/recurrence/next` with {"user_id", "task_id", "causation_id"} creates the next
occurrence of a completed recurring task through the use case (idempotent: a repeated call finds
the link already made and answers {"next_task_id": null}).

These routes sit outside MCP and its bearer-token auth, so each request must carry the shared
DUEFLOW_INTERNAL_TOKEN in the `x-dueflow-internal-token` header (Dapr forwards the caller's
headers to the callee). Without a configured token the routes are not served at all.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.adapters.dapr_invocation import INTERNAL_TOKEN_HEADER
from domain.errors import Conflict, DueflowError, NotFound
from domain.service import TaskService

log = logging.getLogger("dueflow.internal_api")

TOKEN_HEADER = INTERNAL_TOKEN_HEADER
RECUR_METHOD = "internal/recurrence/next"  # the Dapr method name: the path without its slash
RECUR_PATH = f"/{RECUR_METHOD}"
MIN_TOKEN_LENGTH = 16
# the route is the recurrence worker's hand: its events say so, as when the worker writes itself
RECURRENCE_SOURCE = "dueflow.recurrence"

Endpoint = Callable[[Request], Awaitable[Response]]


def recur_endpoint(service: TaskService, token: str) -> Endpoint:
    """The handler of POST /internal/recurrence/next, checking `token` first."""
    expected = expected_token(token)

    async def next_occurrence(request: Request) -> Response:
        refusal = token_refusal(request, expected)
        if refusal is not None:
            return refusal
        try:
            body: Any = json.loads(await request.body())
        except (UnicodeDecodeError, ValueError):
            return _error(400, "the body is not JSON")
        problem = _invalid(body)
        if problem:
            return _error(400, problem)
        try:
            created = await service.recur(
                body["user_id"],
                body["task_id"],
                causation_id=body.get("causation_id"),
                source=RECURRENCE_SOURCE,
            )
        except NotFound as exc:
            return _error(404, exc.message)
        except Conflict as exc:  # a concurrent change: the caller retries
            return _error(409, exc.message)
        except DueflowError as exc:
            return _error(422, exc.message)
        except Exception:
            log.exception("recurring task %s of %s failed", body["task_id"], body["user_id"])
            return _error(500, "internal error; see the API app's log")
        return JSONResponse({"next_task_id": created.id if created else None})

    return next_occurrence


def expected_token(token: str) -> bytes:
    """The internal token as token_refusal() compares it; a short one is refused at start-up."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the internal token must be at least {MIN_TOKEN_LENGTH} characters")
    return token.encode()


def token_refusal(request: Request, expected: bytes) -> Response | None:
    """401 without the internal token header, 403 with a wrong one, None with the right one."""
    presented = request.headers.get(TOKEN_HEADER)
    if presented is None:
        return _error(401, f"missing {TOKEN_HEADER} header")
    if not hmac.compare_digest(presented.encode(), expected):
        return _error(403, f"wrong {TOKEN_HEADER}")
    return None


def internal_routes(service: TaskService, token: str) -> list[Route]:
    return [Route(RECUR_PATH, recur_endpoint(service, token), methods=["POST"])]


def internal_app(service: TaskService, token: str) -> Starlette:
    """The internal routes alone, as an ASGI app (tests; a separate listener)."""
    return Starlette(routes=internal_routes(service, token))


def mount_internal_api(server: FastMCP, service: TaskService, token: str) -> None:
    """Serve the internal routes next to /mcp; they bypass MCP auth, hence the token check."""
    server.custom_route(RECUR_PATH, methods=["POST"], include_in_schema=False)(
        recur_endpoint(service, token)
    )


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for field in ("user_id", "task_id"):
        value = body.get(field)
        if not isinstance(value, str) or not value:
            return f"{field} must be a non-empty string"
    causation = body.get("causation_id")
    if causation is not None and not isinstance(causation, str):
        return "causation_id must be a string or null"
    return None


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
