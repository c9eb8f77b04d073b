"""Tag listings read their page off the tag rows (migration 0007), on SQLite and PostgreSQL:
the rows must follow their task's status and priority, and the pages must be the same as a
listing of the tasks themselves would give."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastmcp import Client

from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.adapters.tables import UTCDateTime
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.database import PG_ADMIN_URL, admin, rows
from tests.support.tools import call

# every tag row beside its task: the copied columns must equal the task's own
_MISMATCHED = """
    SELECT count(*) FROM task_tags g JOIN tasks t ON t.id = g.task_id
    WHERE g.status IS NOT t.status OR g.priority_rank IS NOT t.priority_rank
        OR g.created_at IS NOT t.created_at OR g.user_id IS NOT t.user_id
"""


def mismatched(dialect: str) -> str:
    if dialect == "postgresql":
        return _MISMATCHED.replace("IS NOT", "IS DISTINCT FROM")
    return _MISMATCHED


async def test_tag_rows_follow_their_tasks_status_and_priority(
    runtime: Runtime, alice: Client
) -> None:
    task = (await call(alice, "add_task", title="t", tags=["a", "b"], priority="low"))["task"]
    states = [
        ("update_task", {"priority": "urgent"}),
        ("complete_task", {}),
        ("reopen_task", {}),
        ("update_task", {"tags": ["c"], "priority": None}),
        ("delete_task", {}),
        ("restore_task", {}),
    ]
    for tool, arguments in states:
        await call(alice, tool, task_id=task["id"], **arguments)
        assert (await rows(runtime, mismatched(runtime.engine.dialect.name)))[0][0] == 0, tool
    found = await rows(runtime, "SELECT tag, status, priority_rank FROM task_tags")
    assert found == [("c", "open", 0)]


async def test_tag_listings_page_in_creation_order_through_every_change(
    runtime: Runtime, alice: Client, bob: Client, clock: FixedClock
) -> None:
    priorities = ["none", "low", "medium", "high", "urgent"]
    made = []
    for i in range(24):
        clock.advance(dt.timedelta(seconds=1 if i % 3 else 0))  # some share a creation time
        tags = ["x"] + (["y"] if i % 2 else []) + (["z"] if i % 3 == 0 else [])
        fields = {"title": f"t{i:02}", "tags": tags, "priority": priorities[i % 5]}
        made.append((await call(alice, "add_task", **fields))["task"])
    await call(bob, "add_task", title="not alice's", tags=["x", "y"], priority="high")
    for task in made[::4]:
        await call(alice, "complete_task", task_id=task["id"])
    for task in made[1::5]:
        await call(alice, "update_task", task_id=task["id"], priority="high")
    await call(alice, "update_task", task_id=made[2]["id"], tags=["y"])
    await call(alice, "delete_task", task_id=made[3]["id"])

    async def pages(**filters: Any) -> list[str]:
        titles: list[str] = []
        cursor = None
        while True:
            page = await call(alice, "list_tasks", limit=3, **filters, cursor=cursor)
            titles += [t["title"] for t in page["tasks"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return titles

    async def without_tag_index(**filters: Any) -> list[str]:
        # the same listing filtered by hand from every task of the status, in creation order
        wanted = set(filters.pop("tags"))
        listed = await call(alice, "list_tasks", limit=200, **filters)
        return [t["title"] for t in listed["tasks"] if wanted <= set(t["tags"])]

    for filters in (
        {"tags": ["x"]},
        {"tags": ["x"], "priority": "high"},
        {"tags": ["x"], "priority": ["high", "none"]},
        {"tags": ["y", "x"]},
        {"tags": ["x", "z"], "status": "all"},
        {"tags": ["x"], "status": "completed"},
        {"tags": ["x"], "status": "deleted"},
        {"tags": ["y"], "any_tags": ["z", "q"]},
    ):
        expected = await without_tag_index(**dict(filters))
        assert expected, filters
        assert await pages(**filters) == expected, filters


@pytest.fixture
async def blank_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the parametrized kind (its own PostgreSQL database)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"dueflow_test_0007_{os.getpid()}"  # its own per run: runs may share the server
    await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_upgrading_to_0007_fills_in_the_tag_rows_of_existing_tasks(blank_url: str) -> None:
    engine = make_engine(blank_url)
    insert = sa.text(
        "INSERT INTO tasks (id, user_id, title, description, status, priority_rank, tags,"
        " due_all_day, reminders, occurrence, recurrence_exdates, series_ended, created_at,"
        " updated_at, version) VALUES (:id, 'alice', 't', '', :status, :rank, :tags, false,"
        " '[]', 0, '[]', false, :created, :created, 1)"
    ).bindparams(sa.bindparam("created", type_=UTCDateTime()))
    created = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.UTC)
    try:
        await upgrade(engine, "0006")
        async with engine.begin() as conn:
            for values in (
                {"id": "a", "status": "open", "rank": 3, "tags": '["x", "y"]'},
                {"id": "b", "status": "completed", "rank": 1, "tags": '["x"]'},
            ):
                await conn.execute(insert, {**values, "created": created})
        await upgrade(engine)
        async with engine.connect() as conn:
            found = (
                await conn.execute(
                    sa.text(
                        "SELECT task_id, tag, status, priority_rank FROM task_tags"
                        " ORDER BY task_id, tag"
                    )
                )
            ).all()
            query = sa.text(mismatched(engine.dialect.name))
            (wrong,) = (await conn.execute(query)).one()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in found] == [
        ("a", "x", "open", 3),
        ("a", "y", "open", 3),
        ("b", "x", "completed", 1),
    ]
    assert wrong == 0
