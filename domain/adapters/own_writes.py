"""Read-your-writes in embedded mode: a read of a view the in-process consumers build (the
reminder schedule, the history) first delivers the reader's own undelivered events.

A tool call answers once its transaction commits; its events reach the consumers a pass of the
relay later. A read that finds rows of its user still undelivered runs relay passes itself (after
one already under way) until none is left, so the answer includes every change the user had made
before it, and what those changes caused (a reminder scheduled, its history entry), cascades
being delivered in the following passes. Rows whose delivery failed and waits for a retry are
not waited for; nor is anything beyond `patience` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from domain.adapters.sql import reader_options
from domain.adapters.tables import OutboxRow

log = logging.getLogger("dueflow.relay")
OUTBOX = SQLModel.metadata.tables[OutboxRow.__tablename__]
# a cascade (completion -> next occurrence -> its reminders -> their history) is a few passes
PATIENCE_SECONDS = 2.0


class OwnWritesFirst:
    """ViewFreshness of a process whose relay feeds in-process consumers."""

    def __init__(
        self,
        engine: AsyncEngine,
        deliver_now: Callable[[], Awaitable[int]],
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        """`deliver_now` runs one relay pass at once and answers the rows it delivered."""
        self._engine = engine
        self._deliver_now = deliver_now
        self._patience = patience
        # the pending rows are few: ix_outbox_pending (published_at, id) finds them
        self._pending = (
            sa.select(OUTBOX.c.id)
            .where(
                OUTBOX.c.published_at.is_(None),
                OUTBOX.c.user_id == sa.bindparam("user_id"),
                OUTBOX.c.last_error.is_(None),
            )
            .limit(1)
        )

    async def caught_up(self, user_id: str) -> None:
        deadline = time.monotonic() + self._patience
        while await self._has_pending(user_id):
            if time.monotonic() >= deadline:
                log.warning("events of %s undelivered after %.1f s", user_id, self._patience)
                return
            if not await self._deliver_now():
                await asyncio.sleep(0.005)  # another process's relay holds them: let it finish

    async def _has_pending(self, user_id: str) -> bool:
        async with self._engine.connect() as conn:
            await conn.execution_options(**reader_options(self._engine.dialect.name))
            return (await conn.execute(self._pending, {"user_id": user_id})).first() is not None
