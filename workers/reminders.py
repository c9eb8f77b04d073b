"""The reminders worker: keeps each task's reminder schedule and fires reminders when due.

It consumes `task-events` and re-plans the task's reminders in the same transaction as its
inbox row (relative reminders follow the current due; completing or deleting a task cancels
them). In Dapr mode each pending reminder is also a Dapr job (`jobs`), and the app serves the
job callback and the cron sweep; embedded, a ReminderTimer fires them. On `reminders` it keeps
the jobs of reminders snoozed or dismissed through the API in line with the schedule.

The schedule is `reminder_store`: the SQL table (embedded), or a Dapr state store (Dapr mode),
which is written at once rather than with the inbox row; a redelivery then finds the schedule
already planned, so it re-asserts (overwrites) the jobs of the task's pending reminders too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain.adapters.metrics import (
    REMINDERS_CANCELLED,
    REMINDERS_SCHEDULED,
    count_after_commit,
    observe_reminders,
)
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.statements import InTransaction
from domain.adapters.unit_of_work import JoinedUnitOfWork, ReminderRepositoryFactory
from domain.events import TOPIC_REMINDERS, TOPIC_TASK_EVENTS, EventType
from domain.ports import Clock, JobScheduler
from domain.reminder_schedule import ReminderState
from domain.reminder_service import ReminderService, reconcile
from workers.consumer import Consumer, Outcome, Received, after_commit

log = logging.getLogger("dueflow.reminders")

NAME = "reminders"
SWEEP_BINDING = "reminders-sweep"  # the bindings.cron component; Dapr POSTs to /<its name>
# A job callback that arrives this much early (clock skew between scheduler and app) waits.
EARLY_TOLERANCE = dt.timedelta(seconds=5)


def reminders_consumer(
    clock: Clock,
    jobs: JobScheduler | None = None,
    changed: Callable[[], None] | None = None,
    reminder_store: ReminderRepositoryFactory = SqlReminderRepository,
) -> Consumer:
    """The consumer; `jobs` mirrors the schedule into Dapr jobs, `changed` wakes a timer."""

    async def on_task_event(event: Received, session: AsyncSession) -> Outcome:
        if event.stale:  # a later version of the task was planned already
            return Outcome.SUCCESS
        if event.event_type == EventType.TASK_CREATED and not _has_reminders(event):
            # a new task has no schedule yet, and one without reminders plans none: the read
            # of the schedule would find nothing to change (bench_events.py: a query per add)
            return Outcome.SUCCESS
        if not _has_reminders(event) and not _reminders_changed(event):
            # no reminder before the change nor after it: the task has no schedule to read or
            # change (a relay batch of such edits would read the schedule once per event)
            return Outcome.SUCCESS
        async with JoinedUnitOfWork(session, reminder_store=reminder_store) as uow:
            change = await reconcile(
                uow,
                event.envelope["payload"]["task"],
                _moment(event.envelope["timestamp"]),
                clock.now(),
                causation_id=event.event_id,
            )
            await uow.commit()
            transactional = uow.reminders.transactional
        count_after_commit(session, REMINDERS_SCHEDULED, len(change.scheduled))
        count_after_commit(session, REMINDERS_CANCELLED, len(change.withdrawn))
        if jobs is not None:
            again = [] if transactional else change.kept
            for reminder in [*change.scheduled, *again]:
                await jobs.schedule(reminder)
            for reminder in change.withdrawn:
                await jobs.cancel(reminder.id)
        if change and changed is not None:
            after_commit(session, changed)
        return Outcome.SUCCESS

    async def on_reminder_event(event: Received, session: AsyncSession) -> Outcome:
        # several reminder events share a task version, so `stale` means nothing here
        if event.event_type not in (EventType.REMINDER_SCHEDULED, EventType.REMINDER_CANCELLED):
            return Outcome.SUCCESS
        assert jobs is not None  # subscribed only to mirror the schedule into Dapr jobs
        reminder_id = (event.envelope["payload"].get("reminder") or {}).get("reminder_id")
        if not isinstance(reminder_id, str):
            log.warning("DROP: %s %s carries no reminder_id", event.event_type, event.event_id)
            return Outcome.DROP
        # the row, not the event, says what the job must be now: events may trail the schedule
        current = await reminder_store(InTransaction(session)).get(reminder_id)
        if current is not None and current.state is ReminderState.PENDING:
            await jobs.schedule(current)
        else:
            await jobs.cancel(reminder_id)
        return Outcome.SUCCESS

    if jobs is None:
        # embedded, snoozes and dismissals wake the timer as they commit: nothing to mirror
        return Consumer(name=NAME, handlers={TOPIC_TASK_EVENTS: on_task_event})
    return Consumer(
        name=NAME,
        handlers={TOPIC_TASK_EVENTS: on_task_event, TOPIC_REMINDERS: on_reminder_event},
    )


def reminder_routes(service: ReminderService, clock: Clock) -> list[Route]:
    """The Dapr callbacks of the reminders app: POST /job/<name> and the cron sweep."""

    async def job(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            fired = await _fire_job(service, clock, name)
        except Exception:
            # a non-2xx answer makes the scheduler retry the job by its failure policy
            log.exception("job %s failed", name)
            return JSONResponse({"status": "error", "job": name}, status_code=500)
        return JSONResponse({"status": fired, "job": name})

    async def sweep(request: Request) -> Response:
        if request.method == "OPTIONS":  # Dapr asks at start-up whether the app takes the binding
            return Response(status_code=200)
        try:
            fired = await service.fire_due()
            observe_reminders(fired)
        except Exception:
            log.exception("reminder sweep failed")
            return JSONResponse({"status": "error"}, status_code=500)
        if fired:
            log.warning("sweep fired %d reminder(s) whose jobs had not", len(fired))
        return JSONResponse({"fired": [r.id for r in fired]})

    return [
        Route("/job/{name}", job, methods=["POST"]),
        Route(f"/{SWEEP_BINDING}", sweep, methods=["POST", "OPTIONS"]),
    ]


async def _fire_job(service: ReminderService, clock: Clock, name: str) -> str:
    early = await service.pending_moment(name)
    if early is not None:
        wait = early - clock.now()
        if dt.timedelta(0) < wait <= EARLY_TOLERANCE:
            await asyncio.sleep(wait.total_seconds())
    fired = await service.fire(name)
    observe_reminders([fired] if fired is not None else [])
    if fired is None:
        return "ignored"  # fired already, withdrawn, or not a reminder of ours
    return fired.state.value


def _has_reminders(event: Received) -> bool:
    return bool(event.envelope["payload"]["task"].get("reminders"))


def _reminders_changed(event: Received) -> bool:
    """Whether the change may have touched the task's reminders (an event that does not say
    what changed may have)."""
    changes = event.envelope["payload"].get("changes")
    return not isinstance(changes, dict) or "reminders" in changes


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
