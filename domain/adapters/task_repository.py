"""Tasks and idempotency keys in SQL, through the statements of a unit of work."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from domain.adapters.statements import Statements
from domain.adapters.tables import IdempotencyKeyRow, TaskRow
from domain.adapters.task_queries import (
    RAW_TASK,
    FilterShape,
    list_statement,
    matching_statement,
    parameters,
    sorted_statement,
)
from domain.adapters.task_rows import stored_size, task_from_row, task_values
from domain.adapters.writes import Write
from domain.errors import ConcurrentChange, IdempotencyRace
from domain.model import Task
from domain.ports import IdempotencyRecord
from domain.query import SortKey, TaskFilter
from domain.work import count_characters

TASKS = SQLModel.metadata.tables[TaskRow.__tablename__]
KEYS = SQLModel.metadata.tables[IdempotencyKeyRow.__tablename__]
T = TASKS.c


class SqlTaskRepository:
    """Tasks in SQL; it never commits (its unit of work does)."""

    def __init__(self, statements: Statements) -> None:
        self._statements = statements

    async def add(self, task: Task) -> None:
        await self._statements.insert(_INSERT_TASK, [task_values(task)])  # task_tags: trigger

    async def get(self, user_id: str, task_id: str) -> Task | None:
        found = await self._statements.execute(
            _SELECT_TASK, {"task_id": task_id, "user_id": user_id}
        )
        row = found.one_or_none()
        return task_from_row(row) if row is not None else None

    async def save(self, task: Task, expected_version: int) -> None:
        values = task_values(task)
        values.update(match_id=task.id, match_user=task.user_id, match_version=expected_version)
        if await self._statements.update(_UPDATE_TASK, values) != 1:
            raise ConcurrentChange()

    async def list_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        limit: int,
        after: tuple[dt.datetime, str] | None,
    ) -> list[Task]:
        values = parameters(user_id, where, now, today)
        values["limit"] = limit
        if after is not None:
            values["after_created"], values["after_id"] = after
        query = list_statement(FilterShape.of(where), after is not None)
        return await self._tasks(query, values)

    async def sorted_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        order: tuple[SortKey, ...],
        offset: int,
        limit: int,
    ) -> list[Task]:
        values = parameters(user_id, where, now, today)
        values["offset"], values["limit"] = offset, limit
        return await self._tasks(sorted_statement(FilterShape.of(where), order), values)

    async def all_matching(
        self, user_id: str, where: TaskFilter, now: dt.datetime, today: dt.date
    ) -> list[Task]:
        values = parameters(user_id, where, now, today)
        return await self._tasks(matching_statement(FilterShape.of(where)), values)

    async def find_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None:
        found = await self._statements.execute(_SELECT_KEY, {"user_id": user_id, "key": key})
        row = found.one_or_none()
        return IdempotencyRecord(row.request_hash, row.task_id) if row is not None else None

    async def remember_idempotency(
        self, user_id: str, key: str, record: IdempotencyRecord, now: dt.datetime
    ) -> None:
        row = {
            "user_id": user_id,
            "key": key,
            "request_hash": record.request_hash,
            "task_id": record.task_id,
            "created_at": now,
        }
        try:
            await self._statements.insert(_INSERT_KEY, [row])
        except IntegrityError:
            raise IdempotencyRace() from None

    async def _tasks(self, query: sa.Select[Any], values: dict[str, Any]) -> list[Task]:
        result = await self._statements.execute(query, values)
        return await _decoded_in_slices(result.all())


# A page of the largest tasks takes 100 ms and more to decode: in slices of about this many stored
# characters, with the event loop free between them, other users' requests are served in the
# gaps (bench_fairness.py: another user's get_task p99). A page of ordinary tasks is one slice.
DECODE_SLICE = 200_000


async def _decoded_in_slices(rows: Sequence[Any]) -> list[Task]:
    tasks: list[Task] = []
    size = total = 0
    for row in rows:
        tasks.append(task_from_row(row))
        size += stored_size(row)
        if size >= DECODE_SLICE:
            total += size
            size = 0
            await asyncio.sleep(0)  # one turn of the event loop for whatever waits
    count_characters(total + size)  # what the call is charged for (domain.work)
    return tasks


# Built once: the writes compile once per column set (Write); SQLAlchemy finds the reads'
# compiled form without rebuilding a cache key.
_INSERT_TASK = Write(sa.insert(TASKS))
# every column from the parameters of the same names; the match_* ones select the row
_UPDATE_TASK = Write(
    sa.update(TASKS).where(
        T.id == sa.bindparam("match_id", type_=T.id.type),
        T.user_id == sa.bindparam("match_user", type_=T.user_id.type),
        T.version == sa.bindparam("match_version", type_=T.version.type),
    )
)
_SELECT_TASK = sa.select(*RAW_TASK).where(
    T.id == sa.bindparam("task_id", type_=T.id.type),
    T.user_id == sa.bindparam("user_id", type_=T.user_id.type),
)
_INSERT_KEY = Write(sa.insert(KEYS))
_SELECT_KEY = sa.select(KEYS.c.request_hash, KEYS.c.task_id).where(
    KEYS.c.user_id == sa.bindparam("user_id", type_=KEYS.c.user_id.type),
    KEYS.c.key == sa.bindparam("key", type_=KEYS.c.key.type),
)
