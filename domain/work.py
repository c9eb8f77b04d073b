"""The work a user's calls make the server do, counted where it is done, so that a transport
can charge each call by its cost and not only by its count (mcp_server/fairness.py).

Two kinds: work done inside a call (the stored characters it decodes or answers, the CPU time
its rule walks take), counted into the call's `WorkMeter` while one is open (`metering()`); and
work done after the call, in the background, on the user's behalf (the events a change
records, each carrying the task, which the relay and its consumers then handle), owed in a
`WorkLedger` until that user's next call settles it. Without a meter or a ledger nothing is
counted: stdio charges nobody."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class WorkMeter:
    """What one call has cost so far: stored characters decoded or answered, and rule-walk CPU
    seconds (counted from worker threads too: asyncio.to_thread carries the call's context)."""

    characters: int = 0
    walk_seconds: float = 0.0


_METER: ContextVar[WorkMeter | None] = ContextVar("dueflow_work_meter", default=None)


@contextmanager
def metering() -> Iterator[WorkMeter]:
    """Count the work of the code run in this block (and the threads it hands work to)."""
    meter = WorkMeter()
    token = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(token)


def count_characters(characters: int) -> None:
    """The running call decoded or answers this many stored characters."""
    meter = _METER.get()
    if meter is not None:
        meter.characters += characters


def count_walk(seconds: float) -> None:
    """The running call's rule walk took this much CPU time."""
    meter = _METER.get()
    if meter is not None:
        meter.walk_seconds += seconds


class WorkLedger:
    """Characters of event payload handled in the background for each user (the relay's
    passes), owed until the user's next call is charged for them (`settle`)."""

    def __init__(self) -> None:
        self._owed: dict[str, int] = {}

    def charge(self, user_id: str, characters: int) -> None:
        self._owed[user_id] = self._owed.get(user_id, 0) + characters

    def settle(self, user_id: str) -> int:
        """What `user_id` owes, now cleared."""
        return self._owed.pop(user_id, 0)

    def owed(self, user_id: str) -> int:
        return self._owed.get(user_id, 0)
