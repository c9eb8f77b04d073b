"""The reminder schedule in a Dapr state store (Dapr mode), through the SDK's async client.

One key per reminder (its id), the value a JSON document saved with contentType
application/json so that the state Query API (alpha) can filter on its fields. The Query API
knows EQ, IN, AND and OR, sorting and paging, but no ranges: "due by now" is pending entries
sorted by `fire_key` (a fixed-width, lexicographically ordered UTC moment) read until the first
one after the cut-off. transition() is a read with its etag and a first-write save with it: of
two replicas firing one reminder, the second write is refused (ABORTED) and answers False.

The state store cannot join the database transaction: writes are immediate (see
ReminderService and reconcile for how each use case copes), hence `transactional = False`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from collections.abc import AsyncGenerator, Awaitable, Generator, Sequence
from contextlib import aclosing
from typing import Any, Self, TypeVar

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._state import Concurrency, StateItem, StateOptions

from domain.adapters.dapr_client import SidecarClient, describe_error
from domain.due import UTC, iso_utc
from domain.reminder_schedule import ReminderState, ScheduledReminder

log = logging.getLogger("dueflow.dapr.state")

JSON_METADATA = {"contentType": "application/json"}
PAGE = 100  # entries per Query API page
_FIRST_WRITE = StateOptions(concurrency=Concurrency.first_write)
_PENDING = ReminderState.PENDING.value
_ALPHA_WARNING = "The State Store Query API is an Alpha version"
T = TypeVar("T")


class StateRequestFailed(Exception):
    """The sidecar did not take a state request; the caller retries."""


class DaprStateReminders:
    """A ReminderRepository on the Dapr state store `store`; the client is created on first use.

    One instance serves every unit of work of a process: it holds no transaction."""

    transactional = False

    def __init__(
        self,
        store: str,
        grpc_address: str | None = None,
        http_endpoint: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self._sidecar = SidecarClient(
            grpc_address, http_endpoint, probe_timeout=timeout, unreachable=StateRequestFailed
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sidecar.aclose()

    async def get(self, reminder_id: str) -> ScheduledReminder | None:
        found, _etag = await self._read(reminder_id)
        return found

    async def for_task(self, task_id: str) -> list[ScheduledReminder]:
        query = {"filter": {"EQ": {"task_id": task_id}}, "sort": [{"key": "id"}]}
        return [reminder async for reminder in self._query(query)]

    async def put(self, reminder: ScheduledReminder, now: dt.datetime) -> None:
        await self._save(reminder, now, etag=None)

    async def put_many(self, reminders: Sequence[ScheduledReminder], now: dt.datetime) -> None:
        """One SaveState request with every entry (the sidecar's bulk save), not one each."""
        if not reminders:
            return
        items = [
            StateItem(
                key=reminder.id,
                value=json.dumps(to_state(reminder, now), separators=(",", ":")),
                metadata=JSON_METADATA,
            )
            for reminder in reminders
        ]
        client = await self._sidecar.client()
        what = f"saving {len(items)} reminders"
        await self._call(client, what, client.save_bulk_state(self.store, items))

    async def transition(
        self, reminder: ScheduledReminder, expected: ReminderState, now: dt.datetime
    ) -> bool:
        current, etag = await self._read(reminder.id)
        if current is None or current.state is not expected:
            return False
        return await self._save(reminder, now, etag=etag)

    async def due(self, now: dt.datetime, limit: int) -> list[ScheduledReminder]:
        return await self._pending({"EQ": {"state": _PENDING}}, now, limit)

    async def next_moment(self) -> dt.datetime | None:
        first = await self._pending({"EQ": {"state": _PENDING}}, None, 1)
        return first[0].fire_at if first else None

    async def upcoming(
        self, user_id: str, until: dt.datetime, limit: int
    ) -> list[ScheduledReminder]:
        where = {"AND": [{"EQ": {"user_id": user_id}}, {"EQ": {"state": _PENDING}}]}
        return await self._pending(where, until, limit)

    async def _pending(
        self, where: dict[str, Any], until: dt.datetime | None, limit: int
    ) -> list[ScheduledReminder]:
        """Entries matching `where`, earliest first, up to `until` (the cut-off is ours: the
        Query API has no range filter) and at most `limit` of them."""
        query = {
            "filter": where,
            "sort": [{"key": "fire_key", "order": "ASC"}, {"key": "id", "order": "ASC"}],
        }
        cut = fire_key(until) if until is not None else None
        found: list[ScheduledReminder] = []
        async with aclosing(self._query(query, min(limit, PAGE))) as entries:
            async for reminder in entries:
                if cut is not None and fire_key(reminder.fire_at) > cut:
                    break
                found.append(reminder)
                if len(found) >= limit:
                    break
        return found

    async def _query(
        self, query: dict[str, Any], page: int = PAGE
    ) -> AsyncGenerator[ScheduledReminder, None]:
        """Every entry the query matches, page by page (an async iterator)."""
        token = ""
        while True:
            paged = {**query, "page": {"limit": page, **({"token": token} if token else {})}}
            client = await self._sidecar.client()
            response = await self._call(
                client,
                "querying",
                _quietly(client.query_state(self.store, json.dumps(paged, separators=(",", ":")))),
            )
            for item in response.results:
                if item.error:
                    log.warning("state entry %s unreadable: %s (skipped)", item.key, item.error)
                    continue
                yield from_state(item.value)
            token = response.token
            if not token or len(response.results) < page:
                return

    async def _read(self, key: str) -> tuple[ScheduledReminder | None, str | None]:
        client = await self._sidecar.client()
        response = await self._call(client, f"reading {key}", client.get_state(self.store, key))
        if not response.data:
            return None, None
        return from_state(response.data), response.etag or None

    async def _save(self, reminder: ScheduledReminder, now: dt.datetime, etag: str | None) -> bool:
        """Write the entry; with an etag, only over that version (False when it moved on)."""
        client = await self._sidecar.client()
        value = json.dumps(to_state(reminder, now), separators=(",", ":"))
        try:
            await self._call(
                client,
                f"saving {reminder.id}",
                client.save_state(
                    self.store,
                    reminder.id,
                    value,
                    etag=etag,
                    options=_FIRST_WRITE if etag is not None else None,
                    state_metadata=JSON_METADATA,
                ),
            )
        except StateRequestFailed as exc:
            if etag is not None and _etag_mismatch(exc.__cause__):
                return False  # another replica wrote it since we read it
            raise
        return True

    async def _call(self, client: DaprClient, what: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except Exception as exc:
            await self._sidecar.forget(client, exc)
            raise StateRequestFailed(
                f"{what} in state store {self.store}: {_describe(exc)}"
            ) from exc


def fire_key(moment: dt.datetime) -> str:
    """A UTC moment as fixed-width text whose string order is time order."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def to_state(reminder: ScheduledReminder, now: dt.datetime) -> dict[str, Any]:
    """The JSON value of a reminder's entry."""
    return {
        "id": reminder.id,
        "user_id": reminder.user_id,
        "task_id": reminder.task_id,
        "spec": reminder.spec,
        "fire_at": iso_utc(reminder.fire_at),
        "fire_key": fire_key(reminder.fire_at),
        "task_version": reminder.task_version,
        "state": reminder.state.value,
        "fired_at": iso_utc(reminder.fired_at) if reminder.fired_at else None,
        "late": reminder.late,
        "reason": reminder.reason,
        "updated_at": iso_utc(now),
    }


def from_state(data: bytes | str) -> ScheduledReminder:
    """A reminder from its entry's JSON value."""
    value = json.loads(data)
    return ScheduledReminder(
        id=value["id"],
        user_id=value["user_id"],
        task_id=value["task_id"],
        spec=value["spec"],
        fire_at=_moment(value["fire_at"]),
        task_version=int(value["task_version"]),
        state=ReminderState(value["state"]),
        fired_at=_moment(value["fired_at"]) if value.get("fired_at") else None,
        late=bool(value.get("late")),
        reason=value.get("reason"),
    )


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _etag_mismatch(cause: BaseException | None) -> bool:
    # save_state wraps the gRPC error in DaprInternalError, which keeps only its text; daprd
    # answers an etag mismatch with ABORTED (INVALID_ARGUMENT is a malformed etag)
    inner = cause.__cause__ if isinstance(cause, DaprInternalError) else cause
    return _grpc_code(inner) == "ABORTED"


def _grpc_code(exc: BaseException | None) -> str | None:
    code = getattr(exc, "code", None)
    return getattr(code(), "name", None) if callable(code) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DaprInternalError) and _grpc_code(exc.__cause__):
        return f"gRPC {_grpc_code(exc.__cause__)}: {exc}"
    return describe_error(exc)


class _quietly(Awaitable[T]):
    """Await `call` with the SDK's "Alpha" UserWarning of query_state silenced.

    The SDK warns on every call, synchronously, in the coroutine's first step; only that step
    runs under catch_warnings, so no filter change outlives it or leaks into other tasks."""

    def __init__(self, call: Awaitable[T]) -> None:
        self._call = call

    def __await__(self) -> Generator[Any, Any, T]:
        steps = self._call.__await__()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _ALPHA_WARNING, UserWarning)
            try:
                pending = next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        while True:
            try:
                sent = yield pending
            except BaseException as exc:
                try:
                    pending = steps.throw(exc)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
            else:
                try:
                    pending = steps.send(sent)
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]
