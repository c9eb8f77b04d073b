"""The personal access tokens and the access log in SQL (domain.access.TokenStore)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.access import AccessEvent, PersonalToken, StoredToken
from domain.adapters.sql import reading_connection
from domain.adapters.tables import AccessLogRow, AccessTokenRow

TOKENS = AccessTokenRow.__table__  # type: ignore[attr-defined]
LOG = AccessLogRow.__table__  # type: ignore[attr-defined]
T = TOKENS.c
L = LOG.c


class SqlTokenStore:
    """Every call is one short statement; `find` is a primary-key read, done on each request."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, stored: StoredToken) -> None:
        token = stored.token
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.insert(TOKENS).values(
                    id=token.id,
                    user_id=token.user_id,
                    name=token.name,
                    scopes=" ".join(token.scopes),
                    salt=stored.salt,
                    digest=stored.digest,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                )
            )

    async def find(self, token_id: str) -> StoredToken | None:
        async with reading_connection(self._engine) as conn:
            row = (await conn.execute(sa.select(TOKENS).where(T.id == token_id))).one_or_none()
        if row is None:
            return None
        return StoredToken(_token(row), row.salt, row.digest)

    async def tokens(self, user_id: str | None) -> list[PersonalToken]:
        query = sa.select(TOKENS).order_by(T.user_id, T.created_at, T.id)
        if user_id is not None:
            query = query.where(T.user_id == user_id)
        async with reading_connection(self._engine) as conn:
            return [_token(row) for row in (await conn.execute(query)).all()]

    async def revoke(self, token_id: str, now: dt.datetime) -> PersonalToken | None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(TOKENS)
                .where(T.id == token_id, T.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = (await conn.execute(sa.select(TOKENS).where(T.id == token_id))).one_or_none()
        return None if row is None else _token(row)

    async def used(self, token_id: str, now: dt.datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(TOKENS).where(T.id == token_id).values(last_used_at=now))

    async def record(self, event: AccessEvent) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.insert(LOG).values(
                    at=event.at,
                    action=event.action,
                    token_id=event.token_id,
                    user_id=event.user_id,
                    detail=event.detail[:200],
                )
            )

    async def access_log(self, user_id: str | None, limit: int) -> list[AccessEvent]:
        query = sa.select(LOG).order_by(L.at.desc(), L.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(L.user_id == user_id)
        async with reading_connection(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [
            AccessEvent(row.at, row.action, row.token_id, row.user_id, row.detail) for row in rows
        ]


def _token(row: Any) -> PersonalToken:
    return PersonalToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        scopes=tuple(row.scopes.split()),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
