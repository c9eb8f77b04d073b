"""Leases: named locks that expire, so a periodic job runs on one replica at a time.

Every replica of an app gets the same cron tick (Dapr's `bindings.cron` fires on each of them);
whoever acquires the job's lease runs it, the others skip that tick. A lease expires by itself, so
a replica that dies while holding one blocks the job only until `expires_at`. A long job renews
its lease as it goes (acquire again with the same holder) and stops if that fails.

    leases = Leases(sessions, clock)
    async with leases.hold("audit-retention", new_holder(), dt.timedelta(minutes=5)) as held:
        if held:
            ...  # run the job; nobody else holds this lease until we leave or it expires

Works on SQLite and PostgreSQL: acquire is one INSERT .. ON CONFLICT DO UPDATE .. WHERE the lease
is expired or already ours, so two replicas racing for the same lease cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.sql import reading
from domain.adapters.tables import LeaseRow
from domain.ports import Clock

LEASES = SQLModel.metadata.tables[LeaseRow.__tablename__]
L = LEASES.c


def new_holder() -> str:
    """A holder name unique to this process and call: host, pid and a random suffix."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Leases:
    """Acquire, renew and release named leases in the `leases` table."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def acquire(self, name: str, holder: str, ttl: dt.timedelta) -> bool:
        """Take lease `name` for `ttl` if it is free, expired or already `holder`'s (a renewal);
        answer whether `holder` now holds it."""
        if ttl <= dt.timedelta(0):
            raise ValueError("a lease needs a positive ttl")
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            insert = _insert_for(session)
            statement = (
                insert(LEASES)
                .values(name=name, holder=holder, expires_at=now + ttl)
                .on_conflict_do_update(
                    index_elements=[L.name],
                    set_={"holder": holder, "expires_at": now + ttl},
                    where=sa.or_(L.expires_at <= now, L.holder == holder),
                )
                .returning(L.holder)
            )
            won = (await session.execute(statement)).scalar_one_or_none()
        return won == holder

    async def release(self, name: str, holder: str) -> bool:
        """Give lease `name` back if `holder` still holds it; answer whether it did."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                sa.delete(LEASES).where(L.name == name, L.holder == holder)
            )
        return int(cast(sa.CursorResult[Any], result).rowcount) == 1

    async def holder(self, name: str) -> str | None:
        """Who holds lease `name` now (None when free or expired)."""
        async with reading(self._sessions) as session:
            row = (
                await session.execute(
                    sa.select(L.holder).where(L.name == name, L.expires_at > self._clock.now())
                )
            ).first()
        return None if row is None else str(row[0])

    @contextlib.asynccontextmanager
    async def hold(self, name: str, holder: str, ttl: dt.timedelta) -> AsyncIterator[bool]:
        """Try to acquire for the block; yields whether it did, and releases on leaving if so."""
        acquired = await self.acquire(name, holder, ttl)
        try:
            yield acquired
        finally:
            if acquired:
                await self.release(name, holder)


def _insert_for(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"leases support SQLite and PostgreSQL, not {dialect}")
