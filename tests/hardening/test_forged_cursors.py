"""Defect 3 of issue 14: a cursor edited by the client never reaches the query; it is refused in
the documented style, and the cursors the server issued keep working."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastmcp import Client

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.refusals import assert_refused, assert_refused_alone
from tests.support.tools import add, call

_MISSING = object()


def edited(cursor: str, key: str, value: Any) -> str:
    """`cursor` decoded, its `key` set to `value` (or removed), encoded again."""
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if value is _MISSING:
        data.pop(key, None)
    else:
        data[key] = value
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# none of these is a value the server writes into the field it replaces
FORGERIES = [
    "a string",
    1.5,
    True,
    None,
    ["list"],
    {"an": "object"},
    _MISSING,
    "2026-11-23T10:00:00",
    "2026-11-23T10:00:00+99:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    10**30,
    -5,
    "x\x00y",
]


@pytest.fixture
async def two_tasks(alice: Client, clock: FixedClock, runtime: Runtime) -> None:
    await add(alice, "first", clock=clock, due="2026-12-01T09:00")
    await add(alice, "second", clock=clock, due="2026-12-02T09:00")
    await runtime.relay.drain()  # the audit log, which task_history reads, has both


@pytest.mark.usefixtures("two_tasks")
@pytest.mark.parametrize("key", ["c", "i", "f", "k"])
@pytest.mark.parametrize("value", FORGERIES)
async def test_an_edited_list_cursor_is_refused(
    alice: Client, runtime: Runtime, key: str, value: Any
) -> None:
    cursor = (await call(alice, "list_tasks", limit=1))["next_cursor"]
    assert cursor is not None
    forged = edited(cursor, key, value)
    await assert_refused_alone(alice, runtime, "cursor", "list_tasks", limit=1, cursor=forged)
    assert (await call(alice, "list_tasks", limit=1, cursor=cursor))["tasks"][0][
        "title"
    ] == "second"


@pytest.mark.usefixtures("two_tasks")
@pytest.mark.parametrize("key", ["o", "f", "extra"])
@pytest.mark.parametrize("value", FORGERIES)
async def test_an_edited_sort_cursor_is_refused(
    alice: Client, runtime: Runtime, key: str, value: Any
) -> None:
    cursor = (await call(alice, "list_tasks", sort=["due"], limit=1))["next_cursor"]
    forged = edited(
        cursor, key, "an extra field" if value is _MISSING and key == "extra" else value
    )
    await assert_refused_alone(
        alice, runtime, "cursor", "list_tasks", sort=["due"], limit=1, cursor=forged
    )
    assert (await call(alice, "list_tasks", sort=["due"], limit=1, cursor=cursor))["tasks"]


@pytest.mark.usefixtures("two_tasks")
@pytest.mark.parametrize("key", ["t", "i", "f"])
@pytest.mark.parametrize("value", FORGERIES)
async def test_an_edited_history_cursor_is_refused(
    alice: Client, runtime: Runtime, key: str, value: Any
) -> None:
    cursor = (await call(alice, "task_history", limit=1))["next_cursor"]
    assert cursor is not None
    forged = edited(cursor, key, value)
    await assert_refused_alone(alice, runtime, "cursor", "task_history", limit=1, cursor=forged)
    assert (await call(alice, "task_history", limit=1, cursor=cursor))["entries"]


@pytest.mark.parametrize("cursor", ["", "%%%", "e30", "bnVsbA", "W10", "x" * 2000, "a\x00b"])
async def test_a_cursor_that_is_not_one_is_refused(
    alice: Client, runtime: Runtime, cursor: str
) -> None:
    await assert_refused(alice, runtime, "cursor", "list_tasks", cursor=cursor)
    await assert_refused(alice, runtime, "cursor", "list_tasks", sort=["due"], cursor=cursor)
    await assert_refused(alice, runtime, "cursor", "task_history", cursor=cursor)


@pytest.mark.usefixtures("two_tasks")
async def test_a_well_formed_edit_only_moves_the_page_within_the_users_own_tasks(
    alice: Client, bob: Client
) -> None:
    """Cursors are checked, not signed (domain.query.decode_cursor says why): an edit that keeps
    every field in shape starts the page elsewhere in the same user's same listing, no more."""
    await add(bob, "bob's")
    cursor = (await call(alice, "list_tasks", sort=["due"], limit=1))["next_cursor"]
    far = await call(alice, "list_tasks", sort=["due"], limit=1, cursor=edited(cursor, "o", 12345))
    assert far["tasks"] == [] and far["next_cursor"] is None
    back = await call(alice, "list_tasks", sort=["due"], limit=1, cursor=edited(cursor, "o", 0))
    assert [t["title"] for t in back["tasks"]] == ["first"]
