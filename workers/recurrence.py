"""The recurrence worker: the completion of a recurring task becomes its next occurrence.

Embedded, the worker calls the use case itself, in the same transaction as its inbox row. In Dapr
mode it creates the next occurrence through the task API instead: `invoke` (a DaprInvoker) calls
the API app's POST /internal/recurrence/next by Dapr service invocation. The call is idempotent,
so a redelivery that calls again creates nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.dapr_invocation import ServiceInvocation, response_error, response_json
from domain.adapters.internal_api import RECUR_METHOD, TOKEN_HEADER
from domain.adapters.unit_of_work import JoinedUnitOfWork
from domain.events import TOPIC_TASK_EVENTS, EventType
from domain.ports import Clock
from domain.service import TaskService
from workers.consumer import Consumer, ConsumerRunner, Outcome, Received

log = logging.getLogger("dueflow.recurrence")

NAME = "recurrence"
RecurrenceInvoker = Callable[[str, str, str], Awaitable[None]]
"""(user_id, task_id, causation_id): create the next occurrence elsewhere; raises
InvocationRejected for a request that can never succeed, anything else for a transient failure."""

# statuses that say "not now" rather than "never": the delivery is retried
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


class InvocationRejected(Exception):
    """The API refused the request for good (4xx): retrying cannot help."""


class InvocationFailed(Exception):
    """The API could not be reached or failed (connection error, timeout, 5xx): retry later."""


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


def recurrence_consumer(
    clock: Clock, default_timezone: str, invoke: RecurrenceInvoker | None = None
) -> Consumer:
    """The consumer; without `invoke` it creates the next occurrence in the same transaction as
    its inbox row, with `invoke` (Dapr mode) through the task API."""

    async def on_task_event(event: Received, session: AsyncSession) -> Outcome:
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
        await service.recur(event.user_id, event.task_id, causation_id=event.event_id)
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

    async def process(self, consumer: Consumer, event: Received) -> Outcome:
        if consumer.name != NAME or event.topic not in consumer.handlers:
            return await super().process(consumer, event)
        if await self._seen_now(consumer.name, event.event_id):
            return Outcome.SUCCESS
        outcome = await invoke_next(self._invoke, event)
        if outcome is not Outcome.SUCCESS:
            return outcome
        return await super().process(_recorded_only(consumer), event)


def _recorded_only(consumer: Consumer) -> Consumer:
    async def record(event: Received, session: AsyncSession) -> Outcome:
        return Outcome.SUCCESS

    return Consumer(name=consumer.name, handlers=dict.fromkeys(consumer.handlers, record))


class DaprInvoker:
    """Creates the next occurrence through the API app by Dapr service invocation (the sidecar's
    HTTP invoke API, see domain.adapters.dapr_invocation), with the shared token in a header."""

    def __init__(
        self,
        app_id: str,
        token: str,
        http_endpoint: str | None = None,
        *,
        timeout: float = 10.0,
        api_token: str | None = None,
    ) -> None:
        self.app_id = app_id
        self._calls = ServiceInvocation(
            app_id, {TOKEN_HEADER: token}, http_endpoint, timeout=timeout, api_token=api_token
        )
        self.url = self._calls.url(RECUR_METHOD)

    async def __call__(self, user_id: str, task_id: str, causation_id: str) -> None:
        body = {"user_id": user_id, "task_id": task_id, "causation_id": causation_id}
        try:
            response = await self._calls.post(RECUR_METHOD, body)
        except httpx.HTTPError as exc:
            raise InvocationFailed(
                f"invoking {self.app_id} {RECUR_METHOD} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if response.is_success:
            next_id: Any = response_json(response).get("next_task_id")
            log.info("task %s of %s: next occurrence %s", task_id, user_id, next_id or "none")
            return
        status = response.status_code
        detail = f"{self.app_id} {RECUR_METHOD} answered HTTP {status}: {response_error(response)}"
        if status >= 500 or status in _TRANSIENT_STATUSES:
            raise InvocationFailed(detail)
        raise InvocationRejected(detail)

    async def aclose(self) -> None:
        await self._calls.aclose()
