"""Fixtures for the Dapr path: a fake sidecar and a publisher wired to it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from domain.adapters.dapr_publisher import DaprPublisher
from domain.ports import Clock
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from tests.fakes.dapr_sidecar import FakeDaprSidecar, Published

PUBSUB = "dueflow-pubsub"


@pytest.fixture
async def absent_sidecar() -> AsyncIterator[FakeDaprSidecar]:
    """A fake sidecar whose ports are chosen but which is not started yet."""
    fake = FakeDaprSidecar()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def publisher(sidecar: FakeDaprSidecar) -> AsyncIterator[DaprPublisher]:
    async with connect_publisher(sidecar) as connected:
        assert connected.connected
        yield connected


async def deliver(client: httpx.AsyncClient, request: Published) -> str:
    """POST a recorded publish to a worker app the way daprd delivers it (a structured CloudEvent
    with application/json data); answer the app's status."""
    cloud_event = {
        "specversion": "1.0",
        "id": request.metadata["cloudevent.id"],
        "type": request.metadata["cloudevent.type"],
        "source": "dueflow",
        "datacontenttype": request.data_content_type,
        "data": request.json(),
        "topic": request.topic,
        "pubsubname": request.pubsub_name,
    }
    response = await client.post(
        f"/events/{request.topic}",
        content=json.dumps(cloud_event),
        headers={"content-type": "application/cloudevents+json"},
    )
    status: str = response.json()["status"]
    return status


def connect_publisher(
    sidecar: FakeDaprSidecar, health_timeout: float = 5.0
) -> contextlib.AbstractAsyncContextManager[DaprPublisher]:
    """A DaprPublisher on `sidecar`'s ports (the sidecar may be down)."""
    return DaprPublisher.connect(
        pubsub=PUBSUB,
        grpc_address=sidecar.grpc_address,
        http_endpoint=sidecar.http_endpoint,
        health_timeout=health_timeout,
    )


@contextlib.asynccontextmanager
async def dapr_mode_runtime(
    sidecar: FakeDaprSidecar,
    database_url: str,
    data_dir: Path,
    clock: Clock,
    **extra: str,
) -> AsyncIterator[Runtime]:
    """The API app in Dapr mode on `database_url`, publishing to and invoking through `sidecar`;
    `extra` adds DUEFLOW_* settings (names without the prefix, e.g. INTERNAL_TOKEN=...)."""
    settings = Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            "DUEFLOW_TIMEZONE": "Europe/Berlin",
            "DUEFLOW_DATA_DIR": str(data_dir),
            "DUEFLOW_EVENT_BUS": "dapr",
            "DUEFLOW_DAPR_GRPC_ADDRESS": sidecar.grpc_address,
            "DUEFLOW_DAPR_HTTP_ENDPOINT": sidecar.http_endpoint,
            **{f"DUEFLOW_{name}": value for name, value in extra.items()},
        }
    )
    async with connect_publisher(sidecar) as publisher:
        wired = await bootstrap(settings, clock=clock, publisher=publisher)
        try:
            yield wired
        finally:
            await wired.close()
