"""The audit app's own routes, next to its subscriptions: the history API and the retention tick.

`POST /history` (Dapr method `history`) answers one user's history for service invocation by the
MCP server. The body is {"user_id", "task_id"?, "since"?, "until"?, "limit"?, "cursor"?}: since
and until are RFC 3339 moments (without an offset, UTC), since inclusive and until exclusive;
the answer is {"entries": [...], "next_cursor"}, newest first. It is scoped to `user_id` only, so
the caller must be trusted to name the right user: every request carries the shared
DUEFLOW_INTERNAL_TOKEN in `x-dueflow-internal-token` (401 without, 403 when wrong), and without a
configured token the route is not served. A refused argument answers 400 with
{"error", "field", "problem", "fix"}.

`POST /audit-retention` is where Dapr's `bindings.cron` component of that name delivers its ticks
(dapr/components/audit-retention.yaml; daprd probes the route with OPTIONS at start-up). It runs
retention under its lease and answers 200 (also when retention is off or another replica is
running it), or 500 if the run failed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.adapters.history_sql import SqlHistory
from domain.adapters.internal_api import HISTORY_PATH, guarded
from domain.due import parse_moment
from domain.errors import ValidationFailed
from domain.history import DEFAULT_HISTORY_LIMIT, HistoryQuery, HistoryReader
from domain.ports import Clock
from workers.retention import AuditRetention

log = logging.getLogger("dueflow.audit_api")

RETENTION_BINDING = "audit-retention"  # the cron component's name is the route Dapr calls
RETENTION_PATH = f"/{RETENTION_BINDING}"
_QUERY_FIELDS = frozenset({"user_id", "task_id", "since", "until", "limit", "cursor"})
UTC = ZoneInfo("UTC")


def audit_routes(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    internal_token: str | None,
    retention_days: int | None,
) -> list[Route]:
    """The audit app's routes: the retention tick always, the history with a token only."""
    retention = None
    if retention_days is not None:
        retention = AuditRetention(sessions, clock, retention_days)
    routes = [retention_route(retention)]
    if internal_token:
        routes.append(history_route(SqlHistory(sessions), internal_token))
        log.info("history API for Dapr service invocation at POST %s", HISTORY_PATH)
    else:
        log.warning("history API not served: DUEFLOW_INTERNAL_TOKEN is unset")
    log.info(
        "audit retention: %s",
        f"{retention_days} day(s), on the {RETENTION_BINDING!r} cron binding"
        if retention_days
        else "off (DUEFLOW_AUDIT_RETENTION_DAYS unset: history is kept forever)",
    )
    return routes


def history_route(reader: HistoryReader, token: str) -> Route:
    """POST /history, answering from `reader` to callers that present `token`."""

    async def history(request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body())
        except (UnicodeDecodeError, ValueError):
            return _refused(ValidationFailed("body", "is not JSON", "send a JSON object"))
        try:
            query = history_query(body)
            page = await reader.history(query)
        except ValidationFailed as exc:
            return _refused(exc)
        except Exception:
            log.exception("history of %r failed", body.get("user_id"))
            return JSONResponse({"error": "internal error; see the audit app's log"}, 500)
        return JSONResponse(
            {
                "entries": [entry.to_json() for entry in page.entries],
                "next_cursor": page.next_cursor,
            }
        )

    return Route(HISTORY_PATH, guarded(history, token), methods=["POST"])


def retention_route(retention: AuditRetention | None) -> Route:
    """POST (and OPTIONS) /audit-retention: one retention run per cron tick."""

    async def tick(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=200)
        if retention is None:
            return JSONResponse({"status": "retention off: DUEFLOW_AUDIT_RETENTION_DAYS unset"})
        try:
            run = await retention.run()
        except Exception:
            log.exception("audit retention failed")
            return JSONResponse({"status": "failed; see the audit app's log"}, 500)
        return JSONResponse(
            {
                "status": "ran" if run.ran else "skipped: another run holds the lease",
                "cutoff": run.cutoff.isoformat(),
                "deleted": run.deleted,
                "batches": run.batches,
            }
        )

    return Route(RETENTION_PATH, tick, methods=["POST", "OPTIONS"])


def history_query(body: Any) -> HistoryQuery:
    """The HistoryQuery of a /history request body; ValidationFailed names the bad field."""
    if not isinstance(body, dict):
        raise ValidationFailed("body", "is not a JSON object", "send {'user_id': ..., ...}")
    unknown = sorted(set(body) - _QUERY_FIELDS)
    if unknown:
        raise ValidationFailed(unknown[0], "is not a history filter", "leave it out")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise ValidationFailed("user_id", "is missing or empty", "name the user the history is of")
    for name in ("task_id", "cursor"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ValidationFailed(name, "is not a string", f"send {name} as a string or null")
    limit = body.get("limit", DEFAULT_HISTORY_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise ValidationFailed("limit", f"{limit!r} is not a whole number", "send 1 to 200")
    return HistoryQuery(
        user_id=user_id,
        task_id=body.get("task_id"),
        since=_moment(body.get("since"), "since"),
        until=_moment(body.get("until"), "until"),
        limit=limit,
        cursor=body.get("cursor"),
    )


def _moment(value: Any, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(field, "is not a string", "send an RFC 3339 moment")
    return parse_moment(value, UTC, field)


def _refused(error: ValidationFailed) -> Response:
    return JSONResponse(
        {"error": error.message, "field": error.field, "problem": error.problem, "fix": error.fix},
        status_code=400,
    )
