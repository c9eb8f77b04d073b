"""Serve one worker from the registry as a Dapr app: `dueflow worker <name> [--port]`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

import uvicorn
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette
from starlette.types import Lifespan

from domain.adapters.dapr_jobs import DaprJobs
from domain.adapters.dapr_state_reminders import DaprStateReminders
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.schema import current_revision, head_revision
from domain.adapters.sql import ReminderStore, SqlUnitOfWork, make_engine, shared_store
from domain.clock import SystemClock
from domain.ports import Clock, JobScheduler
from domain.reminder_service import ReminderService
from workers.audit import NAME as AUDIT
from workers.audit_api import audit_routes
from workers.consumer import ConsumerRunner
from workers.dapr_app import build_app
from workers.heap import settle_heap
from workers.notification_dispatch import NotificationDispatcher, build_dispatcher
from workers.notifications import CONSUMER_NAME, NotificationConfig
from workers.recurrence import DaprInvoker, InvokingRunner, RecurrenceInvoker
from workers.registry import WORKER_NAMES, build_consumers
from workers.reminders import NAME as REMINDERS
from workers.reminders import reminder_routes

log = logging.getLogger("dueflow.worker")

DEFAULT_PORT = 3000  # Dapr's default app port (dapr.conf.global_settings.HTTP_APP_PORT)


class WorkerSetupError(ValueError):
    """The worker cannot start as configured; the message names the fix."""


@contextlib.asynccontextmanager
async def worker_app(
    name: str,
    database_url: str,
    pubsub_name: str,
    clock: Clock | None = None,
    default_timezone: str = "UTC",
    invoke: RecurrenceInvoker | None = None,
    jobs: JobScheduler | None = None,
    *,
    internal_token: str | None = None,
    retention_days: int | None = None,
    notifications: NotificationConfig | None = None,
    reminder_store: ReminderStore = SqlReminderRepository,
) -> AsyncIterator[Starlette]:
    """The Dapr app of worker `name` on `database_url`; the engine is disposed on leaving.

    With `invoke` the recurrence worker creates next occurrences through the task API (Dapr
    service invocation), called outside its inbox transaction (see InvokingRunner). The
    reminders worker keeps a Dapr job per reminder through `jobs` and its schedule in
    `reminder_store` (`dueflow worker reminders`: the Dapr state store), and serves the job
    callbacks and the sweep; the audit app also serves its history (with `internal_token`) and
    the retention cron route; the notifications worker delivers through the channels of
    `notifications` (never mcp: no MCP session lives in a worker), its dispatcher running for
    the app's lifespan."""
    clock = clock or SystemClock()
    if name not in WORKER_NAMES:
        known = ", ".join(WORKER_NAMES) or "none"
        raise WorkerSetupError(f"No worker named {name!r}. Fix: use one of: {known}.")
    engine = make_engine(database_url)
    config = replace(notifications or NotificationConfig(), mcp=False)
    dispatcher = build_dispatcher(engine, config, clock)
    try:
        consumer = build_consumers(
            clock,
            default_timezone,
            invoke,
            jobs=jobs,
            notifications=config,
            wake_dispatcher=dispatcher.notify,
            reminder_store=reminder_store,
        )[name]
        current, head = await current_revision(engine), head_revision()
        if current != head:
            raise WorkerSetupError(
                f"The database schema is at {current or 'nothing'}, the code needs {head}."
                " Fix: run `dueflow db upgrade` with the same DUEFLOW_DATABASE_URL."
            )
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        runner = (
            ConsumerRunner(sessions, clock)
            if invoke is None
            else InvokingRunner(sessions, clock, invoke)
        )
        routes = []
        if name == REMINDERS:
            reminders = ReminderService(
                partial(SqlUnitOfWork, sessions, reminder_store=reminder_store),
                clock,
                default_timezone,
                firing_unit_of_work=partial(
                    SqlUnitOfWork, sessions, urgent=True, reminder_store=reminder_store
                ),
            )
            routes = reminder_routes(reminders, clock)
        if name == AUDIT:
            routes = audit_routes(sessions, clock, internal_token, retention_days)
        lifespan = _dispatching(dispatcher) if name == CONSUMER_NAME else None
        yield build_app(
            [consumer], runner, pubsub_name, sessions=sessions, routes=routes, lifespan=lifespan
        )
    finally:
        await dispatcher.aclose()
        await engine.dispose()


def _dispatching(dispatcher: NotificationDispatcher) -> Lifespan[Starlette]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(dispatcher.run(stop), name="notification-dispatch")
        try:
            yield
        finally:
            stop.set()
            await task

    return lifespan


async def serve_worker(
    name: str,
    database_url: str,
    pubsub_name: str,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    default_timezone: str = "UTC",
    *,
    api_app_id: str | None = None,
    internal_token: str | None = None,
    dapr_http_endpoint: str | None = None,
    retention_days: int | None = None,
    notifications: NotificationConfig | None = None,
    statestore: str = "statestore",
) -> None:
    """Serve worker `name` with uvicorn until SIGINT/SIGTERM; logs go to stderr.

    The recurrence worker invokes the API app `api_app_id` when `internal_token` is set too, and
    otherwise calls the use case on the database directly. The reminders worker keeps its
    schedule in the Dapr state store `statestore`."""
    invoker = None
    jobs = DaprJobs(http_endpoint=dapr_http_endpoint) if name == REMINDERS else None
    state = (
        DaprStateReminders(statestore, http_endpoint=dapr_http_endpoint)
        if name == REMINDERS
        else None
    )
    if state is not None:
        log.info("reminders: the schedule lives in the Dapr state store %r", state.store)
    if name == "recurrence":
        if api_app_id and internal_token:
            invoker = DaprInvoker(api_app_id, internal_token, dapr_http_endpoint)
            log.info(
                "recurrence: next occurrences through the task API (Dapr service invocation of"
                " app %r, %s)",
                api_app_id,
                invoker.url,
            )
        else:
            log.info(
                "recurrence: next occurrences written to the database directly (set"
                " DUEFLOW_INTERNAL_TOKEN and DUEFLOW_API_APP_ID to go through the task API)"
            )
    try:
        async with worker_app(
            name,
            database_url,
            pubsub_name,
            default_timezone=default_timezone,
            invoke=invoker,
            jobs=jobs,
            internal_token=internal_token,
            retention_days=retention_days,
            notifications=notifications,
            reminder_store=shared_store(state) if state is not None else SqlReminderRepository,
        ) as app:
            settle_heap()
            await _serve(app, name, pubsub_name, host, port)
    finally:
        if invoker is not None:
            await invoker.aclose()
        if jobs is not None:
            await jobs.aclose()
        if state is not None:
            await state.aclose()


async def _serve(app: Starlette, name: str, pubsub_name: str, host: str, port: int) -> None:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    log.info(
        "worker %s serving Dapr app on http://%s:%d (pub/sub %r; topics: %s)",
        name,
        host,
        port,
        pubsub_name,
        ", ".join(build_consumers(SystemClock())[name].topics),
    )
    await uvicorn.Server(config).serve()
