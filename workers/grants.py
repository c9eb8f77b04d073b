"""What a browser holds instead of a bearer token: WebSocket tickets, board sessions, sign-in links.

Browsers cannot put an `Authorization` header on a WebSocket, so a client trades its bearer token
(over HTTP) for a ticket that opens one socket: single-use and short-lived. The board keeps a
session cookie instead of the token; `dueflow board` prints a one-time sign-in link. Each is a
random secret of which only a SHA-256 is stored, with the user and the personal token that issued
it: a grant of a token revoked (or expired) since is refused, so revoking a token revokes what it
issued. Grants live in the database, so any gateway replica honours them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from domain.adapters.access_sql import SqlTokenStore
from domain.adapters.tables import RealtimeGrantRow
from domain.ports import Clock

GRANTS = SQLModel.metadata.tables[RealtimeGrantRow.__tablename__]
TICKET, SESSION, SIGNIN = "ticket", "session", "signin"
_PREFIX = {TICKET: "dft_", SESSION: "dfs_", SIGNIN: "dfl_"}
MAX_SECRET = 100  # longer text is no grant: it is refused before it is hashed


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a bearer token stands for: the user, and the personal token's id if it is one."""

    user_id: str
    token_id: str | None = None


Identify = Callable[[str], Awaitable[Identity | None]]
"""Resolves a bearer token the way the MCP HTTP transport does; None when it is not accepted."""


@dataclass(frozen=True, slots=True)
class Lifetimes:
    ticket: dt.timedelta = dt.timedelta(seconds=30)
    session: dt.timedelta = dt.timedelta(hours=12)
    signin: dt.timedelta = dt.timedelta(minutes=10)

    def of(self, kind: str) -> dt.timedelta:
        return {TICKET: self.ticket, SESSION: self.session, SIGNIN: self.signin}[kind]


class Grants:
    """Issues, redeems and ends grants; every check reads the database (no replica cache)."""

    def __init__(self, engine: AsyncEngine, clock: Clock, lifetimes: Lifetimes | None = None):
        self._engine = engine
        self._clock = clock
        self._tokens = SqlTokenStore(engine)
        self.lifetimes = lifetimes or Lifetimes()

    async def issue(self, kind: str, identity: Identity) -> str:
        """A new grant's secret text, shown once."""
        text = _PREFIX[kind] + secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._engine.begin() as conn:
            # grants that ended an hour ago or more go as new ones come: the table stays small
            await conn.execute(
                sa.delete(GRANTS).where(GRANTS.c.expires_at < now - dt.timedelta(hours=1))
            )
            await conn.execute(
                sa.insert(GRANTS).values(
                    digest=_digest(text),
                    kind=kind,
                    user_id=identity.user_id,
                    token_id=identity.token_id,
                    created_at=now,
                    expires_at=now + self.lifetimes.of(kind),
                )
            )
        return text

    async def redeem(self, kind: str, text: str, *, once: bool) -> Identity | None:
        """Who the grant `text` stands for, if it is live (and, `once`, not used: it is used now);
        None for anything else, a grant of a token no longer active included."""
        if not text or len(text) > MAX_SECRET or not text.startswith(_PREFIX[kind]):
            return None
        now = self._clock.now()
        live = (
            (GRANTS.c.digest == _digest(text))
            & (GRANTS.c.kind == kind)
            & (GRANTS.c.expires_at > now)
            & GRANTS.c.used_at.is_(None)
        )
        columns = (GRANTS.c.user_id, GRANTS.c.token_id)
        async with self._engine.begin() as conn:
            if once:
                used = sa.update(GRANTS).where(live).values(used_at=now).returning(*columns)
                found = (await conn.execute(used)).first()
            else:
                found = (await conn.execute(sa.select(*columns).where(live))).first()
        if found is None:
            return None
        identity = Identity(str(found[0]), found[1])
        return identity if await self.still_active(identity) else None

    async def end(self, kind: str, text: str) -> None:
        """Forget a grant (sign-out); nothing happens for one that does not exist."""
        if text and len(text) <= MAX_SECRET:
            async with self._engine.begin() as conn:
                await conn.execute(
                    sa.delete(GRANTS).where(GRANTS.c.digest == _digest(text), GRANTS.c.kind == kind)
                )

    async def still_active(self, identity: Identity) -> bool:
        """False once the personal token behind `identity` is revoked or expired."""
        if identity.token_id is None:
            return True
        stored = await self._tokens.find(identity.token_id)
        return stored is not None and stored.token.state(self._clock.now()) == "active"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
