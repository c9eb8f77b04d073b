"""The task listing statements: built once per filter shape, then run with bound parameters.

Building a SELECT with its EXISTS subqueries and its cache key costs more than SQLite takes to run
it; a filter's shape (which conditions it uses, not their values) has few variants, so each is
built once and every listing only binds its values.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel

from domain.adapters.tables import TaskRow, TaskTagRow
from domain.model import Status
from domain.query import SortKey, TaskFilter

TASKS = SQLModel.metadata.tables[TaskRow.__tablename__]
TAGS = SQLModel.metadata.tables[TaskTagRow.__tablename__]
T = TASKS.c
TAG = TAGS.c
# the tag rows a tag listing reads its page from (the other tags' EXISTS read TAGS itself)
LISTED_TAGS = TAGS.alias("listed")
LISTED = LISTED_TAGS.c
# The task columns as the driver gives them (text or native datetimes, JSON text or lists):
# task_rows.task_from_row decodes a row in one pass, where SQLAlchemy's type processing would
# make a call per value.
RAW_TASK: tuple[Any, ...] = tuple(
    sa.type_coerce(column, sa.types.NullType()).label(column.name) for column in T
)


@dataclass(frozen=True, slots=True)
class FilterShape:
    """Which conditions a TaskFilter sets, without their values: the key of a built statement."""

    priorities: bool
    all_tags: int
    any_tags: bool
    due_before: bool
    due_after: bool
    overdue: bool | None
    text: bool
    completed_before: bool = False
    completed_after: bool = False

    @classmethod
    def of(cls, where: TaskFilter) -> FilterShape:
        return cls(
            priorities=bool(where.priorities),
            all_tags=len(where.all_tags),
            any_tags=bool(where.any_tags),
            due_before=where.due_before is not None,
            due_after=where.due_after is not None,
            overdue=where.overdue,
            text=bool(where.text),
            completed_before=where.completed_before is not None,
            completed_after=where.completed_after is not None,
        )


def parameters(user_id: str, where: TaskFilter, now: dt.datetime, today: dt.date) -> dict[str, Any]:
    """The values the statement of `FilterShape.of(where)` binds."""
    values: dict[str, Any] = {
        "user_id": user_id,
        "statuses": [s.value for s in where.statuses()],
    }
    if where.priorities:
        values["priorities"] = [p.rank for p in where.priorities]
    for number, tag in enumerate(where.all_tags):
        values[f"tag_{number}"] = tag
    if where.any_tags:
        values["any_tags"] = list(where.any_tags)
    if where.due_before is not None:
        values["due_before"] = where.due_before
    if where.due_after is not None:
        values["due_after"] = where.due_after
    if where.overdue is not None:
        values["now"], values["today"] = now, today
    if where.completed_before is not None:
        values["completed_before"] = where.completed_before
    if where.completed_after is not None:
        values["completed_after"] = where.completed_after
    if where.text:
        values["pattern"] = "%" + _escape_like(where.text) + "%"
    return values


@lru_cache(maxsize=256)
def list_statement(shape: FilterShape, after: bool) -> Select[Any]:
    """A page in creation order; with `after`, past the key (after_created, after_id).

    Filtered by tags, the page is read off the first tag's rows, which carry the task's status,
    priority and creation time (ix_task_tags_listing): in creation order there, where reading
    the tasks in that order would look each one up among the tags."""
    if shape.all_tags:
        first = LISTED.tag == sa.bindparam("tag_0", type_=TAG.tag.type)
        query = (
            sa.select(*RAW_TASK)
            .select_from(LISTED_TAGS.join(TASKS, T.id == LISTED.task_id))
            .where(first, *_conditions(shape, LISTED, skip_tags=1))
        )
        key: tuple[Any, Any] = (LISTED.created_at, LISTED.task_id)
    else:
        query = sa.select(*RAW_TASK).where(*_conditions(shape))
        key = (T.created_at, T.id)
    if after:
        query = query.where(
            sa.tuple_(*key)
            > sa.tuple_(
                sa.bindparam("after_created", type_=T.created_at.type),
                sa.bindparam("after_id", type_=T.id.type),
            )
        )
    return query.order_by(*key).limit(sa.bindparam("limit", type_=sa.Integer()))


@lru_cache(maxsize=256)
def sorted_statement(shape: FilterShape, order: tuple[SortKey, ...]) -> Select[Any]:
    """A page in the order of `order` (no urgency), ties in creation order."""
    return (
        sa.select(*RAW_TASK)
        .where(*_conditions(shape))
        .order_by(*_order(order), T.created_at, T.id)
        .offset(sa.bindparam("offset", type_=sa.Integer()))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


@lru_cache(maxsize=256)
def matching_statement(shape: FilterShape) -> Select[Any]:
    return sa.select(*RAW_TASK).where(*_conditions(shape))


def _conditions(
    shape: FilterShape, listed: Any = None, skip_tags: int = 0
) -> list[ColumnElement[bool]]:
    """The filter's conditions: user, status and priority on `listed` (the tag rows that carry
    them, or else the tasks), the tags from `skip_tags` on as EXISTS."""
    conditions: list[ColumnElement[bool]] = [
        T.user_id == sa.bindparam("user_id", type_=T.user_id.type)
    ]
    if listed is None:
        listed = T
    else:
        conditions.append(listed.user_id == sa.bindparam("user_id", type_=T.user_id.type))
    conditions.append(
        listed.status.in_(sa.bindparam("statuses", expanding=True, type_=T.status.type))
    )
    if shape.priorities:
        conditions.append(
            listed.priority_rank.in_(
                sa.bindparam("priorities", expanding=True, type_=T.priority_rank.type)
            )
        )
    for number in range(skip_tags, shape.all_tags):
        conditions.append(
            sa.exists().where(
                TAG.task_id == T.id,
                TAG.tag == sa.bindparam(f"tag_{number}", type_=TAG.tag.type),
            )
        )
    if shape.any_tags:
        conditions.append(
            sa.exists().where(
                TAG.task_id == T.id,
                TAG.user_id == sa.bindparam("user_id", type_=TAG.user_id.type),
                TAG.tag.in_(sa.bindparam("any_tags", expanding=True, type_=TAG.tag.type)),
            )
        )
    if shape.due_before:
        conditions.append(T.due_at < sa.bindparam("due_before", type_=T.due_at.type))
    if shape.due_after:
        conditions.append(T.due_at >= sa.bindparam("due_after", type_=T.due_at.type))
    if shape.completed_before:
        conditions.append(
            T.completed_at < sa.bindparam("completed_before", type_=T.completed_at.type)
        )
    if shape.completed_after:
        conditions.append(
            T.completed_at >= sa.bindparam("completed_after", type_=T.completed_at.type)
        )
    if shape.overdue is not None:
        now = sa.bindparam("now", type_=T.due_at.type)
        today = sa.bindparam("today", type_=T.due_date.type)
        overdue = sa.and_(
            T.status == Status.OPEN.value,
            sa.or_(
                sa.and_(T.due_all_day.is_(False), T.due_at < now),
                sa.and_(T.due_all_day.is_(True), T.due_date < today),
            ),
        )
        conditions.append(overdue if shape.overdue else sa.not_(sa.func.coalesce(overdue, False)))
    if shape.text:
        pattern = sa.bindparam("pattern", type_=T.title.type)
        conditions.append(
            sa.or_(T.title.ilike(pattern, escape="\\"), T.description.ilike(pattern, escape="\\"))
        )
    return conditions


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _order(order: tuple[SortKey, ...]) -> list[Any]:
    columns: list[Any] = []
    for key in order:
        if key.field == "due":
            # undated tasks last, whichever the direction
            columns.append(sa.case((T.due_at.is_(None), 1), else_=0))
            column: Any = T.due_at
        elif key.field == "priority":
            column = T.priority_rank
        elif key.field == "created":
            column = T.created_at
        elif key.field == "updated":
            column = T.updated_at
        else:
            column = sa.func.lower(T.title)
        columns.append(column.desc() if key.descending else column.asc())
    return columns
