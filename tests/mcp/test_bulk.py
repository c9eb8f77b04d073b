"""The batch forms of add_task, update_task and the status changes, through a real MCP client on
SQLite and PostgreSQL: the contract of the single forms (idempotency, the refusal style, nothing
half-written, one user's tasks only, hostile input), all or nothing, one event per task, progress
notifications, and what a batch counts as against the per-user rate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from dueflow.bootstrap import Runtime
from mcp_server.fairness import CallLimits
from mcp_server.http_app import Reachable, http_app
from mcp_server.server import TokenUsers, build_server
from tests.support.database import rows
from tests.support.refusals import assert_refused, assert_refused_alone, written
from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, bearer, serving
from tests.support.tools import add, call, refused, server_for

NUL = "\x00"


async def events(runtime: Runtime) -> list[tuple[str, str]]:
    found = await rows(runtime, "SELECT event_type, task_id FROM outbox ORDER BY id")
    return [(str(kind), str(task)) for kind, task in found]


async def test_a_batch_adds_every_task_in_order_with_one_event_each(
    alice: Client, runtime: Runtime
) -> None:
    items = [{"title": f"t{i}", "due": "2026-12-01", "priority": "high"} for i in range(5)]
    items[2] = {"title": "t2", "due": "tomorrow 5pm", "recurrence": "every weekday"}
    answer = await call(alice, "add_task", tasks=items)
    tasks = answer["tasks"]
    assert [t["title"] for t in tasks] == [f"t{i}" for i in range(5)]
    assert answer["created"] == [True] * 5
    assert tasks[2]["due"]["datetime"] == "2026-11-24T17:00:00+01:00"
    assert tasks[2]["recurrence"]["rule"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"
    assert await events(runtime) == [("TASK_CREATED", t["id"]) for t in tasks]
    listed = (await call(alice, "list_tasks"))["tasks"]
    assert [t["title"] for t in listed] == [f"t{i}" for i in range(5)]


async def test_a_repeated_batch_with_idempotency_keys_adds_nothing_new(
    alice: Client, runtime: Runtime
) -> None:
    items = [{"title": f"t{i}", "idempotency_key": f"k{i}"} for i in range(3)]
    first = await call(alice, "add_task", tasks=items)
    again = await call(alice, "add_task", tasks=[*items, {"title": "t3", "idempotency_key": "k3"}])
    assert again["created"] == [False, False, False, True]
    assert [t["id"] for t in again["tasks"][:3]] == [t["id"] for t in first["tasks"]]
    assert len(await events(runtime)) == 4
    text = await refused(alice, "add_task", tasks=[{"title": "other", "idempotency_key": "k1"}])
    assert text.startswith("tasks[0].idempotency_key: 'k1' was already used")
    text = await refused(
        alice,
        "add_task",
        tasks=[{"title": "a", "idempotency_key": "k9"}, {"title": "b", "idempotency_key": "k9"}],
    )
    assert text.startswith("tasks[1].idempotency_key: is the key of tasks[0] too")


# (items, the field the refusal names): one test walks them all, as each needs a fresh runtime
# no more than the last refusal left it (nothing)
REFUSED_ITEMS: list[tuple[list[Any], str]] = [
    ([{"title": "ok"}, {"title": "bad", "due": "next tuesday-ish"}], "tasks[1].due"),
    ([{"title": "ok"}, {"title": " "}], "tasks[1].title"),
    ([{"title": "ok"}, {"title": "x" * 1_000_000}], "tasks[1].title"),
    ([{"title": "ok", "description": f"a{NUL}b"}], "tasks[0].description"),
    ([{"title": "ok", "tags": ["home", f"w{NUL}"]}], "tasks[0].tags"),
    ([{"title": "ok"}, {"title": "r", "recurrence": "FREQ=DAILY"}], "tasks[1].recurrence"),
    (
        [{"title": "ok"}, {"title": "t", "reminders": ["P1M"], "due": "2026-12-01"}],
        "tasks[1].reminders",
    ),
    ([{"title": "ok"}, {"title": 5}], "tasks[1].title"),
    ([{"title": "ok"}, {"title": "t", "owner": "bob"}], "tasks[1]"),
    ([{"title": "ok"}, "buy milk"], "tasks[1]"),
    ([{"title": f"t{i}"} for i in range(101)], "tasks"),
    ([], "tasks"),
]


async def test_a_refused_item_refuses_the_batch_naming_it_and_nothing_is_written(
    alice: Client, runtime: Runtime
) -> None:
    for items, field in REFUSED_ITEMS:
        await assert_refused_alone(alice, runtime, field, "add_task", tasks=items)
    assert await written(runtime) == (0, 0, 0)


async def test_a_batch_of_the_largest_tasks_is_added(alice: Client, runtime: Runtime) -> None:
    big = {"description": "d" * 10_000, "tags": [f"tag-{i:02d}-" + "x" * 50 for i in range(50)]}
    items = [{"title": f"{i:03d} " + "t" * 490, **big} for i in range(100)]
    answer = await call(alice, "add_task", tasks=items)
    assert len(answer["tasks"]) == 100 and len(await events(runtime)) == 100


async def test_a_batch_beside_single_arguments_is_refused(alice: Client, runtime: Runtime) -> None:
    await assert_refused(alice, runtime, "due", "add_task", due="today", tasks=[{"title": "y"}])
    task = await add(alice)
    await assert_refused(
        alice, runtime, "task_id", "complete_task", task_id=task["id"], task_ids=[task["id"]]
    )


async def test_a_batch_updates_every_task_with_one_event_each(
    alice: Client, runtime: Runtime
) -> None:
    a = await add(alice, "a", due="2026-12-01", tags=["x"])
    b = await add(alice, "b", priority="low")
    answer = await call(
        alice,
        "update_task",
        tasks=[
            {"task_id": a["id"], "due": None, "tags": None, "expected_version": 1},
            {"task_id": b["id"], "priority": "urgent", "due": "2026-12-24"},
        ],
    )
    first, second = answer["tasks"]
    assert first["due"] is None and first["tags"] == [] and first["version"] == 2
    assert second["priority"] == "urgent" and second["due"]["date"] == "2026-12-24"
    assert await events(runtime) == [
        ("TASK_CREATED", a["id"]),
        ("TASK_CREATED", b["id"]),
        ("TASK_UPDATED", a["id"]),
        ("TASK_UPDATED", b["id"]),
    ]


async def test_a_stale_version_in_a_batch_changes_none_of_it(
    alice: Client, runtime: Runtime
) -> None:
    a, b = await add(alice, "a"), await add(alice, "b")
    await call(alice, "update_task", task_id=b["id"], title="b2")
    text = await assert_refused(
        alice,
        runtime,
        "tasks[1].expected_version",
        "update_task",
        tasks=[
            {"task_id": a["id"], "title": "a2"},
            {"task_id": b["id"], "title": "b3", "expected_version": 1},
        ],
    )
    assert "version 2" in text
    assert (await call(alice, "get_task", task_id=a["id"]))["task"]["title"] == "a"
    await assert_refused(
        alice,
        runtime,
        "tasks[1].task_id",
        "update_task",
        tasks=[{"task_id": a["id"], "title": "x"}, {"task_id": a["id"], "title": "y"}],
    )
    await assert_refused(
        alice,
        runtime,
        "tasks[0].recurrence",
        "update_task",
        tasks=[{"task_id": a["id"], "recurrence": "FREQ=DAILY"}],
    )


async def test_a_batch_of_status_changes_records_one_event_per_changed_task(
    alice: Client, runtime: Runtime
) -> None:
    tasks = [await add(alice, f"t{i}") for i in range(3)]
    ids = [t["id"] for t in tasks]
    await call(alice, "complete_task", task_id=ids[0])
    done = await call(alice, "complete_task", task_ids=ids)
    assert [t["status"] for t in done["tasks"]] == ["completed"] * 3
    kinds = [kind for kind, _ in await events(runtime)]
    assert kinds.count("TASK_COMPLETED") == 3  # the first was done already: no second event
    deleted = await call(alice, "delete_task", task_ids=ids[:2])
    assert [t["status"] for t in deleted["tasks"]] == ["deleted", "deleted"]
    await assert_refused(alice, runtime, "task_ids[0]", "reopen_task", task_ids=ids)
    restored = await call(alice, "restore_task", task_ids=ids[:2])
    assert [t["status"] for t in restored["tasks"]] == ["completed", "completed"]
    reopened = await call(alice, "reopen_task", task_ids=ids)
    assert [t["status"] for t in reopened["tasks"]] == ["open"] * 3


async def test_a_refused_id_refuses_the_whole_status_change(
    alice: Client, runtime: Runtime
) -> None:
    mine = (await add(alice))["id"]
    for task_ids, field in [
        ([mine, "no-such-task"], "task_ids[1]"),
        ([mine, mine], "task_ids[1]"),
        ([mine, f"a{NUL}"], "task_ids[1]"),
        ([mine, "x" * 100_000], "task_ids[1]"),
        ([mine] + [f"id-{i}" for i in range(100)], "task_ids"),
    ]:
        await assert_refused_alone(alice, runtime, field, "complete_task", task_ids=task_ids)
    assert (await call(alice, "get_task", task_id=mine))["task"]["status"] == "open"


async def test_a_batch_reaches_only_the_callers_tasks(
    alice: Client, bob: Client, runtime: Runtime
) -> None:
    mine = await add(bob, "bob's")
    theirs = await add(alice, "alice's")
    text = await assert_refused(
        bob, runtime, "task_ids[1]", "delete_task", task_ids=[mine["id"], theirs["id"]]
    )
    assert "no task" in text
    await assert_refused(
        bob,
        runtime,
        "tasks[0].task_id",
        "update_task",
        tasks=[{"task_id": theirs["id"], "title": "mine now"}],
    )
    assert (await call(alice, "get_task", task_id=theirs["id"]))["task"] == theirs


async def test_a_long_batch_reports_its_progress(runtime: Runtime) -> None:
    seen: list[tuple[float, float | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total))

    async with Client(server_for(runtime, "alice"), progress_handler=progress) as client:
        await call(client, "add_task", tasks=[{"title": f"t{i}"} for i in range(30)])
        assert seen[-1] == (31, 31) and len(seen) == 31
        assert [done for done, _ in seen] == sorted({done for done, _ in seen})
        seen.clear()
        ids = [t["id"] for t in (await call(client, "list_tasks"))["tasks"]]
        await call(client, "complete_task", task_ids=ids)
        assert seen == [(0, 30), (30, 30)]


@pytest.fixture
async def limited(runtime: Runtime) -> AsyncIterator[str]:
    """Ten calls at once, then one every 20 s."""
    server = build_server(
        runtime.service,
        None,
        TokenUsers({ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}),
        limits=CallLimits(per_second=0.05, burst=10, in_flight=4),
    )
    app = http_app(server, "http", "/mcp", Reachable("127.0.0.1"), max_request_bytes=4_000_000)
    async with serving(app) as base:
        yield f"{base}/mcp"


async def test_a_batch_counts_as_one_call_per_ten_items_against_the_rate(limited: str) -> None:
    alice = Client(StreamableHttpTransport(limited, headers=bearer(ALICE_TOKEN)))
    bob = Client(StreamableHttpTransport(limited, headers=bearer(BOB_TOKEN)))
    async with alice, bob:
        for i in range(4):
            await call(alice, "add_task", title=f"single {i}")
        text = await refused(alice, "add_task", tasks=[{"title": f"t{i}"} for i in range(61)])
        assert text.startswith("rate:") and "this batch counts as 7" in text
        await call(alice, "add_task", tasks=[{"title": f"t{i}"} for i in range(60)])
        assert (await refused(alice, "add_task", title="one more")).startswith("rate:")
        await call(bob, "add_task", tasks=[{"title": f"b{i}"} for i in range(100)])
        assert (await refused(bob, "get_task", task_id="x")).startswith("rate:")
