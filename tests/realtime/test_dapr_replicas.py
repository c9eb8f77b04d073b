"""`dueflow worker realtime` replicas in Dapr mode: the feed written once by the shared group,
every replica pushing what the feed holds, and no change lost while no replica runs.

The API app publishes through the fake sidecar, which records each publish; the tests then play
the broker: a publish goes to the feed group's route of one replica (a shared, durable group
hands each message to one member, and keeps what nobody read), and to the push route of each
replica running at the time (each is its own consumer, starting at the newest message)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client
from starlette.applications import Starlette

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime, worker_app
from mcp_server.server import build_server
from tests.fakes.dapr_sidecar import FakeDaprSidecar, Published
from tests.support.dapr_apps import client_for, dapr_mode_runtime, deliver_published
from tests.support.database import scalar
from tests.support.realtime import changes, next_message, open_socket, quiet
from tests.support.runtimes import settings_for
from tests.support.servers import ALICE_TOKEN, serving
from tests.support.tools import call

FEED = "/events/feed"


@pytest.fixture
async def api(
    runtime: Runtime, database_url: str, clock: FixedClock, sidecar: FakeDaprSidecar, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """The API app in Dapr mode, publishing to the fake sidecar (`runtime` migrated the base)."""
    async with dapr_mode_runtime(sidecar, database_url, tmp_path, clock) as wired:
        yield wired


@pytest.fixture
async def alice(api: Runtime) -> AsyncIterator[Client]:
    async with Client(build_server(api.service, "alice")) as client:
        yield client


def replica(
    database_url: str, clock: FixedClock
) -> contextlib.AbstractAsyncContextManager[Starlette]:
    """One gateway replica on the shared database, its components not named as the defaults."""
    settings = settings_for(
        database_url,
        TOKENS=f"{ALICE_TOKEN}=alice",
        REALTIME_HEARTBEAT_SECONDS="0.2",
        DAPR_PUBSUB="pubsub-realtime",
        REALTIME_FEED_PUBSUB="realtime-feed",
    )
    return worker_app("realtime", settings, clock)


class Broker:
    """What the tests hand on: the fake sidecar's publishes on task-updates not yet handed."""

    def __init__(self, sidecar: FakeDaprSidecar) -> None:
        self._sidecar = sidecar
        self._handed = 0

    async def new(self, api: Runtime) -> list[Published]:
        await api.relay.drain()
        updates = [p for p in self._sidecar.published if p.topic == "task-updates"]
        fresh, self._handed = updates[self._handed :], len(updates)
        return fresh


async def test_a_change_published_while_no_replica_runs_is_in_the_feed_for_the_next_one(
    api: Runtime, alice: Client, sidecar: FakeDaprSidecar, database_url: str, clock: FixedClock
) -> None:
    broker = Broker(sidecar)
    task = (await call(alice, "add_task", title="Before the outage"))["task"]
    async with replica(database_url, clock) as first, serving(first) as base:
        socket = await open_socket(base, ALICE_TOKEN)
        async with client_for(first) as app:
            for published in await broker.new(api):
                assert await deliver_published(app, published, FEED) == "SUCCESS"
                assert await deliver_published(app, published) == "SUCCESS"
        [seen] = await changes(socket, 1)
        assert (seen["position"], seen["event"]) == (1, "TASK_CREATED")
        await socket.close()

    # no replica runs: the changes wait in the feed group's partition (its committed offset
    # stays where the last member left it); the gone pods' own consumers are gone with them
    await call(alice, "update_task", task_id=task["id"], title="Renamed while nobody ran")
    other = (await call(alice, "add_task", title="Added while nobody ran"))["task"]
    backlog = await broker.new(api)
    assert len(backlog) == 2

    async with (
        replica(database_url, clock) as second,
        serving(second) as base,
        client_for(second) as app,
    ):
        # the shared group hands the backlog to its new member; the new pod's own consumer
        # starts at the newest message and is handed none of it
        for published in backlog:
            assert await deliver_published(app, published, FEED) == "SUCCESS"
        back = await open_socket(base, ALICE_TOKEN, after=seen["position"])
        missed = await changes(back, 2)
        assert [(m["position"], m["event"], m["task_id"]) for m in missed] == [
            (2, "TASK_UPDATED", task["id"]),
            (3, "TASK_CREATED", other["id"]),
        ]
        assert missed[0]["task"]["title"] == "Renamed while nobody ran"

        await call(alice, "complete_task", task_id=other["id"])
        [live] = await broker.new(api)
        assert await deliver_published(app, live, FEED) == "SUCCESS"
        assert await deliver_published(app, live) == "SUCCESS"
        message = await next_message(back)
        assert (message["position"], message["event"]) == (4, "TASK_COMPLETED")
        assert await quiet(back)
        await back.close()
    assert await scalar(api, "SELECT count(*) FROM realtime_changes") == 4


async def test_every_replica_pushes_a_change_the_feed_group_wrote_once(
    api: Runtime, alice: Client, sidecar: FakeDaprSidecar, database_url: str, clock: FixedClock
) -> None:
    broker = Broker(sidecar)
    async with (
        replica(database_url, clock) as writer,
        replica(database_url, clock) as pusher,
        serving(writer) as writer_base,
        serving(pusher) as pusher_base,
        client_for(writer) as writer_app,
        client_for(pusher) as pusher_app,
    ):
        on_writer = await open_socket(writer_base, ALICE_TOKEN)
        on_pusher = await open_socket(pusher_base, ALICE_TOKEN)
        await call(alice, "add_task", title="Seen on both replicas")
        [published] = await broker.new(api)
        # the push arrives on the replica the feed group did not pick, before the feed has it:
        # it waits for the row instead of writing one
        pushed = asyncio.create_task(deliver_published(pusher_app, published))
        await asyncio.sleep(0.2)
        assert not pushed.done()
        assert await deliver_published(writer_app, published, FEED) == "SUCCESS"
        assert await deliver_published(writer_app, published) == "SUCCESS"
        assert await pushed == "SUCCESS"
        for socket in (on_writer, on_pusher):
            [message] = await changes(socket, 1)
            assert (message["position"], message["event"]) == (1, "TASK_CREATED")
            assert await quiet(socket)
            await socket.close()
    assert await scalar(api, "SELECT count(*) FROM realtime_changes") == 1


async def test_a_push_the_feed_does_not_hold_answers_retry_and_writes_nothing(
    api: Runtime, alice: Client, sidecar: FakeDaprSidecar, database_url: str, clock: FixedClock
) -> None:
    broker = Broker(sidecar)
    task = (await call(alice, "add_task", title="Pushed too early"))["task"]
    await call(alice, "update_task", task_id=task["id"], title="Renamed")
    created, renamed = await broker.new(api)
    async with replica(database_url, clock) as app_, client_for(app_) as app:
        # the feed group has not written it: Dapr is to deliver it again
        assert await deliver_published(app, created) == "RETRY"
        assert await scalar(api, "SELECT count(*) FROM realtime_changes") == 0
        assert await deliver_published(app, renamed, FEED) == "SUCCESS"
        # the feed skips the older version behind the newer one: nothing will ever be pushed
        assert await deliver_published(app, created, FEED) == "SUCCESS"
        assert await deliver_published(app, created) == "SUCCESS"
    assert await scalar(api, "SELECT count(*) FROM realtime_changes") == 1
