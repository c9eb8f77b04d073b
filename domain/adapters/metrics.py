"""Every metric Dueflow exports, defined once (Prometheus client, the process's default registry).

Names follow Prometheus conventions (`dueflow_` prefix, base units, `_total` on counters) and
every label takes a bounded set of values: a tool name the server registered (or `unknown`), a
worker, a topic, an outcome, a channel; never a task, user or event id. The instrumented code
calls these objects where the thing they count happens, so a reader sees each seam; what is only
known by asking the database (the outbox backlog) is read when /metrics is scraped
(`Scrape.refreshers`), never on the request path. `docs/observability.md` lists them all with
the alerts built on them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as render
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.reminder_schedule import ReminderState, ScheduledReminder

log = logging.getLogger("dueflow.metrics")

PATH = "/metrics"
# a scrape waits at most this long for what it reads from the database, then answers without it
REFRESH_TIMEOUT_SECONDS = 2.0

# latency of work done in a request or a handler: 1 ms to 10 s
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# how late or how far behind something is: 10 ms to an hour
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# ---- MCP (mcp_server/metered.py, mcp_server/http_app.py)
TOOL_CALLS = Counter(
    "dueflow_mcp_tool_calls",
    "MCP tool calls answered, by tool and outcome (ok, refused, internal_error).",
    ["tool", "outcome"],
)
TOOL_CALL_SECONDS = Histogram(
    "dueflow_mcp_tool_call_duration_seconds",
    "Time from a tools/call entering the server's middleware to its answer, by tool.",
    ["tool"],
    buckets=_FAST,
)
AUTH_FAILURES = Counter(
    "dueflow_http_auth_failures",
    "HTTP requests to the MCP endpoint answered 401, by reason (missing_token, invalid_token).",
    ["reason"],
)

SESSIONS = Gauge(
    "dueflow_mcp_sessions",
    "MCP client connections the server can reach now, by transport (read at scrape).",
    ["transport"],
)

# ---- Database (domain/adapters/unit_of_work.py; the pool is read at scrape)
TRANSACTION_SECONDS = Histogram(
    "dueflow_db_transaction_duration_seconds",
    "Time from a writing unit of work's start to its commit (rolled-back ones are not counted).",
    buckets=_FAST,
)
POOL_WAIT_SECONDS = Histogram(
    "dueflow_db_pool_wait_seconds",
    "Time a checkout took to get a database connection from this process's pool: waiting for a"
    " free one, or opening a new one.",
    buckets=_FAST,
)
POOL_CONNECTIONS = Gauge(
    "dueflow_db_pool_connections",
    "This process's pooled database connections by state: in_use (checked out) or idle"
    " (read at scrape; SQLite's connections are not pooled and show none).",
    ["state"],
)

# ---- Outbox relay (domain/adapters/outbox.py)
OUTBOX_BACKLOG = Gauge(
    "dueflow_outbox_backlog_rows", "Outbox rows committed but not yet published (read at scrape)."
)
OUTBOX_OLDEST_AGE = Gauge(
    "dueflow_outbox_oldest_age_seconds",
    "How long the oldest unpublished outbox row has waited; 0 when none waits (read at scrape).",
)
PUBLISH_ATTEMPTS = Counter(
    "dueflow_outbox_publish_attempts", "Publish calls the relay made to the event bus."
)
PUBLISH_FAILURES = Counter(
    "dueflow_outbox_publish_failures", "Publish calls to the event bus that failed."
)
PUBLISH_SECONDS = Histogram(
    "dueflow_outbox_publish_duration_seconds",
    "Time one publish call to the event bus took (embedded: the in-process consumers' work too).",
    buckets=_FAST,
)
ROWS_PUBLISHED = Counter("dueflow_outbox_rows_published", "Outbox rows marked published.")
ROWS_RETRIED = Counter(
    "dueflow_outbox_rows_retried", "Outbox rows whose publish failed and that wait to retry."
)

# ---- Consumers (workers/consumer.py, workers/dead_letters.py)
EVENTS_HANDLED = Counter(
    "dueflow_events_handled",
    "Events a worker handled, by worker, topic and outcome (success, retry, drop, duplicate,"
    " error: the handler raised).",
    ["worker", "topic", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "dueflow_event_handler_duration_seconds",
    "Time a worker's handler took on one event, by worker and topic.",
    ["worker", "topic"],
    buckets=_FAST,
)
EVENT_LAG = Histogram(
    "dueflow_event_lag_seconds",
    "Time from an event's commit (its timestamp) to a worker having applied it.",
    ["worker", "topic"],
    buckets=_SLOW,
)
DEAD_LETTERS = Counter(
    "dueflow_dead_letters",
    "Events an in-process consumer gave up on and parked (dueflow events dead-letters).",
    ["worker", "topic"],
)

# ---- Reminders and notifications (workers/reminders.py, reminder_timer.py, notification_*)
REMINDERS_SCHEDULED = Counter(
    "dueflow_reminders_scheduled", "Reminders planned by the reminders worker."
)
REMINDERS_CANCELLED = Counter(
    "dueflow_reminders_cancelled", "Pending reminders withdrawn by the reminders worker."
)
REMINDERS_FIRED = Counter(
    "dueflow_reminders_fired", "Reminders fired (a trigger recorded), late ones included."
)
REMINDERS_LATE = Counter(
    "dueflow_reminders_late", "Reminders fired later than the lateness threshold allows."
)
REMINDERS_STALE = Counter(
    "dueflow_reminders_stale", "Reminders dropped at their moment: the task no longer wants them."
)
REMINDER_LATENESS = Histogram(
    "dueflow_reminder_lateness_seconds",
    "Time from a reminder's moment to its firing.",
    buckets=_SLOW,
)
NOTIFICATIONS = Counter(
    "dueflow_notifications",
    "Notification delivery attempts, by channel and outcome (delivered, skipped, retried, dead).",
    ["channel", "outcome"],
)
NOTIFICATION_SECONDS = Histogram(
    "dueflow_notification_delivery_duration_seconds",
    "Time one delivery attempt took, by channel.",
    ["channel"],
    buckets=_FAST,
)

# ---- Recurrence and audit (workers/recurrence.py, workers/audit.py, workers/retention.py)
OCCURRENCES_CREATED = Counter(
    "dueflow_recurrence_occurrences_created", "Next occurrences of recurring tasks created."
)
SERIES_ENDED = Counter(
    "dueflow_recurrence_series_ended",
    "Recurring series that ended at a completion (COUNT or UNTIL reached), as the recurrence"
    " worker saw their TASK_RECURRED.",
)
OCCURRENCES_SKIPPED = Counter(
    "dueflow_recurrence_occurrences_skipped",
    "Occurrences a late completion stepped over (their due had passed), as the recurrence worker"
    " saw them in TASK_RECURRED.",
)
AUDIT_ENTRIES = Counter("dueflow_audit_entries_written", "Audit log entries committed.")
RETENTION_RUNS = Counter(
    "dueflow_audit_retention_runs",
    "Audit retention runs, by outcome (ran, skipped: another holds the lease, failed).",
    ["outcome"],
)
RETENTION_DELETED = Counter("dueflow_audit_entries_pruned", "Audit entries deleted by retention.")


# Static label values, and the series created at zero before anything happens: rate() and
# increase() then see the first event instead of a series that starts with it.
TOOL_OUTCOMES = ("ok", "refused", "internal_error")
HANDLED_OUTCOMES = ("success", "retry", "drop", "duplicate", "error")
NOTIFICATION_OUTCOMES = ("delivered", "skipped", "retried", "dead")
for _reason in ("missing_token", "invalid_token"):
    AUTH_FAILURES.labels(_reason)
for _outcome in ("ran", "skipped", "failed"):
    RETENTION_RUNS.labels(_outcome)


def declare_tools(names: Iterable[str]) -> None:
    """Create each tool's series at zero."""
    for name in names:
        TOOL_CALL_SECONDS.labels(name)
        for outcome in TOOL_OUTCOMES:
            TOOL_CALLS.labels(name, outcome)


def declare_consumer(worker: str, topics: Iterable[str]) -> None:
    """Create a worker's series at zero, for each topic it consumes."""
    for topic in topics:
        HANDLER_SECONDS.labels(worker, topic)
        EVENT_LAG.labels(worker, topic)
        DEAD_LETTERS.labels(worker, topic)
        for outcome in HANDLED_OUTCOMES:
            EVENTS_HANDLED.labels(worker, topic, outcome)


def declare_channels(channels: Iterable[str]) -> None:
    """Create each notification channel's series at zero."""
    for channel in channels:
        NOTIFICATION_SECONDS.labels(channel)
        for outcome in NOTIFICATION_OUTCOMES:
            NOTIFICATIONS.labels(channel, outcome)


def observe_reminders(fired: Sequence[ScheduledReminder]) -> None:
    """Count what a firing pass did: each reminder fired (late or not) or found stale."""
    for reminder in fired:
        if reminder.state is ReminderState.STALE:
            REMINDERS_STALE.inc()
            continue
        REMINDERS_FIRED.inc()
        if reminder.late:
            REMINDERS_LATE.inc()
        if reminder.fired_at is not None:
            lateness = (reminder.fired_at - reminder.fire_at).total_seconds()
            REMINDER_LATENESS.observe(max(lateness, 0.0))


def count_after_commit(session: AsyncSession, counter: Counter, amount: float = 1.0) -> None:
    """Add `amount` to `counter` once the session's transaction commits (never if it rolls
    back): what a handler writes counts only when it stands."""
    if not amount:
        return
    pending: dict[Counter, float] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}

        def flush(_session: Any) -> None:
            for metric, value in session.info.pop(_PENDING, {}).items():
                metric.inc(value)

        def discard(_session: Any) -> None:
            session.info.pop(_PENDING, None)

        sa_event.listen(session.sync_session, "after_commit", flush, once=True)
        sa_event.listen(session.sync_session, "after_rollback", discard, once=True)
    pending[counter] = pending.get(counter, 0.0) + amount


_PENDING = "dueflow_metrics_after_commit"

Refresher = Callable[[], Awaitable[None]]


def pool_refresher(engine: AsyncEngine) -> Refresher:
    """Reads `engine`'s connection pool into dueflow_db_pool_connections at each scrape."""

    async def pool() -> None:
        status = engine.sync_engine.pool
        in_use, idle = getattr(status, "checkedout", None), getattr(status, "checkedin", None)
        if callable(in_use) and callable(idle):
            POOL_CONNECTIONS.labels("in_use").set(in_use())
            POOL_CONNECTIONS.labels("idle").set(idle())

    return pool


class Scrape:
    """Answers a scrape: runs the refreshers (each bounded in time), then renders the registry
    in the Prometheus text format."""

    def __init__(self, refreshers: Sequence[Refresher] = ()) -> None:
        self.refreshers = list(refreshers)

    async def body(self) -> bytes:
        for refresh in self.refreshers:
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
                    await refresh()
            except Exception as exc:
                # the rest of the metrics still answer; the gauge keeps its last value
                log.warning("a metrics refresh failed: %s", exc)
        return render(REGISTRY)

    async def endpoint(self, request: Request) -> Response:
        return Response(await self.body(), media_type=CONTENT_TYPE_LATEST)

    def route(self) -> Route:
        """GET /metrics, for an app's routes."""
        return Route(PATH, self.endpoint, methods=["GET"])


class MetricsFirst:
    """ASGI middleware answering GET /metrics itself, before the app behind it (and its Host
    guard and bearer check) sees the request: a scraper addresses a pod by IP and sends no
    token, and the text holds no user data."""

    def __init__(self, app: ASGIApp, scrape: Scrape) -> None:
        self.app = app
        self.scrape = scrape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") == PATH and scope.get("method") == "GET":
            response = Response(await self.scrape.body(), media_type=CONTENT_TYPE_LATEST)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
