"""The API app's internal route, for Dapr service invocation by the recurrence worker.

`POST /internal/recurrence/next` with {"user_id", "task_id", "causation_id"} creates the next
occurrence of a completed recurring task through the use case (idempotent: a repeated call finds
the link already made and answers {"next_task_id": null}). The route, its header and its token
check are the contract in domain/adapters/internal_api.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.adapters.internal_api import RECUR_PATH, Endpoint, error, guarded
from domain.adapters.metrics import OCCURRENCES_CREATED
from domain.errors import Conflict, DueflowError, NotFound
from domain.service import TaskService

log = logging.getLogger("dueflow.internal_api")

# the route is the recurrence worker's hand: its events say so, as when the worker writes itself
RECURRENCE_SOURCE = "dueflow.recurrence"


def recur_endpoint(service: TaskService, token: str) -> Endpoint:
    """The handler of POST /internal/recurrence/next, checking `token` first."""

    async def next_occurrence(request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body())
        except (UnicodeDecodeError, ValueError):
            return error(400, "the body is not JSON")
        problem = _invalid(body)
        if problem:
            return error(400, problem)
        try:
            created = await service.recur(
                body["user_id"],
                body["task_id"],
                causation_id=body.get("causation_id"),
                source=RECURRENCE_SOURCE,
            )
        except NotFound as exc:
            return error(404, exc.message)
        except Conflict as exc:  # a concurrent change: the caller retries
            return error(409, exc.message)
        except DueflowError as exc:
            return error(422, exc.message)
        except Exception:
            log.exception("recurring task %s of %s failed", body["task_id"], body["user_id"])
            return error(500, "internal error; see the API app's log")
        if created is not None:
            OCCURRENCES_CREATED.inc()
        return JSONResponse({"next_task_id": created.id if created else None})

    return guarded(next_occurrence, token)


def internal_app(service: TaskService, token: str) -> Starlette:
    """The internal route alone, as an ASGI app (tests; a separate listener)."""
    return Starlette(routes=[Route(RECUR_PATH, recur_endpoint(service, token), methods=["POST"])])


def mount_internal_api(server: FastMCP, service: TaskService, token: str) -> None:
    """Serve the internal route next to /mcp; it bypasses MCP auth, hence the token check."""
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
