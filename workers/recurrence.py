"""The recurrence worker: the completion of a recurring task becomes its next occurrence.

Embedded, the worker calls the use case itself, in the same transaction as its inbox row. In Dapr
mode it creates the next occurrence through the task API instead: `invoke` (a DaprInvoker, see
workers.dapr_invoker) calls the API app's POST /internal/recurrence/next by Dapr service
invocation. The call is idempotent, so a redelivery that calls again creates nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.metrics import (
    OCCURRENCES_CREATED,
    OCCURRENCES_SKIPPED,
    SERIES_ENDED,
    count_after_commit,
)
from domain.adapters.unit_of_work import JoinedUnitOfWork
from domain.events import TOPIC_TASK_EVENTS, EventType
from domain.ports import Clock
from domain.service import TaskService
from workers.consumer import DUPLICATE, Consumer, ConsumerRunner, Outcome, Received

log = logging.getLogger("dueflow.recurrence")

NAME = "recurrence"
RecurrenceInvoker = Callable[[str, str, str], Awaitable[None]]
"""(user_id, task_id, causation_id): create the next occurrence elsewhere; raises
InvocationRejected for a request that can never succeed, anything else for a transient failure."""


class InvocationRejected(Exception):
    """The API refused the request for good (4xx): retrying cannot help."""


def creates_next(event: Received) -> bool:
    """Whether `event` is the completion of a recurring task."""
    return event.event_type == EventType.TASK_COMPLETED and bool(
        event.envelope["payload"]["task"].get("recurrence")
    )


async def invoke_next(invoke: RecurrenceInvoker, event: Received) -> Outcome:
    """Have the API create the next occurrence; DROP if it refuses for good, raise if transient."""
    if not creates_next(event):
        return Outcome.SUCCESS
    try:
        await invoke(event.user_id, event.task_id, event.event_id)
    except InvocationRejected as exc:
        log.warning("DROP: the API refused the next occurrence of task %s: %s", event.task_id, exc)
        return Outcome.DROP
    return Outcome.SUCCESS


def count_recurred(event: Received, session: AsyncSession) -> None:
    """Count what a TASK_RECURRED says: a series that ended, occurrences stepped over."""
    changes = event.envelope["payload"].get("changes", {})
    if not isinstance(changes, dict):
        return
    if "series_ended" in changes:
        count_after_commit(session, SERIES_ENDED)
    skipped = changes.get("skipped_occurrences")
    if isinstance(skipped, list) and len(skipped) == 2 and isinstance(skipped[1], list):
        count_after_commit(session, OCCURRENCES_SKIPPED, len(skipped[1]))


def recurrence_consumer(
    clock: Clock, default_timezone: str, invoke: RecurrenceInvoker | None = None
) -> Consumer:
    """The consumer; without `invoke` it creates the next occurrence in the same transaction as
    its inbox row, with `invoke` (Dapr mode) through the task API."""

    async def on_task_event(event: Received, session: AsyncSession) -> Outcome:
        if event.event_type == EventType.TASK_RECURRED.value:
            count_recurred(event, session)
        if not creates_next(event):
            return Outcome.SUCCESS
        if invoke is not None:
            return await invoke_next(invoke, event)
        service = TaskService(
            partial(JoinedUnitOfWork, session),
            clock,
            default_timezone=default_timezone,
            source="dueflow.recurrence",
        )
        # recur() reads the task as it is now: a completion already handled, or a task reopened
        # since, leaves nothing to do, so redelivery and complete-reopen-complete create one task
        created = await service.recur(event.user_id, event.task_id, causation_id=event.event_id)
        if created is not None:
            count_after_commit(session, OCCURRENCES_CREATED)
        return Outcome.SUCCESS

    return Consumer(name=NAME, handlers={TOPIC_TASK_EVENTS: on_task_event})


class InvokingRunner(ConsumerRunner):
    """Runs the invoking recurrence consumer with the call made *before* its inbox transaction.

    A network call must not hold a database transaction open: on SQLite, whose transactions take
    the write lock up front, the API could not even write the next occurrence while the worker
    waits for it. The API call is idempotent, so calling first and recording the inbox row after
    is safe; an event already in the inbox is not sent again. Other consumers run as usual.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        invoke: RecurrenceInvoker,
    ) -> None:
        super().__init__(sessions, clock)
        self._invoke = invoke

    async def _apply(self, consumer: Consumer, event: Received) -> tuple[Outcome, str]:
        if consumer.name != NAME or event.topic not in consumer.handlers:
            return await super()._apply(consumer, event)
        if await self._seen_now(consumer.name, event.event_id):
            return Outcome.SUCCESS, DUPLICATE
        outcome = await invoke_next(self._invoke, event)
        if outcome is not Outcome.SUCCESS:
            return outcome, outcome.lower()
        return await super()._apply(_recorded_only(consumer), event)


def _recorded_only(consumer: Consumer) -> Consumer:
    async def record(event: Received, session: AsyncSession) -> Outcome:
        return Outcome.SUCCESS

    return Consumer(name=consumer.name, handlers=dict.fromkeys(consumer.handlers, record))
