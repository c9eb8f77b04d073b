"""The Dapr side of the tests: CloudEvents posted to a worker app the way daprd posts them, and
publishers and runtimes wired to the fake sidecar."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from domain.adapters.dapr_publisher import DaprPublisher
from domain.ports import Clock
from dueflow.bootstrap import Runtime, bootstrap
from tests.fakes.dapr_sidecar import FakeDaprSidecar, Published
from tests.support.runtimes import settings_for

PUBSUB = "dueflow-pubsub"
CLOUDEVENTS = {"content-type": "application/cloudevents+json"}


def cloudevent(envelope: dict[str, Any], topic: str = "task-events", **override: Any) -> bytes:
    """A structured CloudEvent as the sidecar posts it to a subscriber's route; `override`
    replaces its attributes."""
    event = {
        "specversion": "1.0",
        "id": envelope.get("event_id", str(uuid.uuid4())),
        "source": "dueflow-api",
        "type": f"dueflow.{str(envelope.get('event_type', 'x')).lower()}.v1",
        "datacontenttype": "application/json",
        "data": envelope,
        "topic": topic,
        "pubsubname": PUBSUB,
        "traceid": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "",
        "time": "2026-11-23T10:00:00Z",
    }
    event.update(override)
    return json.dumps(event).encode()


def client_for(app: Any) -> httpx.AsyncClient:
    """An HTTP client that calls the ASGI `app` in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker")


async def deliver(
    client: httpx.AsyncClient,
    envelope: dict[str, Any],
    topic: str = "task-events",
    prefix: str = "/events",
) -> str:
    """POST the envelope to a worker app as daprd delivers it (to the subscription's route
    under `prefix`); answer the app's status."""
    response = await client.post(
        f"{prefix}/{topic}", content=cloudevent(envelope, topic), headers=CLOUDEVENTS
    )
    status: str = response.json()["status"]
    return status


async def deliver_published(
    client: httpx.AsyncClient, request: Published, prefix: str = "/events"
) -> str:
    """POST a publish the fake sidecar recorded to a worker app, as daprd delivers it (the
    CloudEvent attributes the publisher set, to the subscription's route under `prefix`);
    answer the app's status."""
    response = await client.post(
        f"{prefix}/{request.topic}",
        content=cloudevent(
            request.json(),
            request.topic,
            id=request.metadata["cloudevent.id"],
            type=request.metadata["cloudevent.type"],
            datacontenttype=request.data_content_type,
            pubsubname=request.pubsub_name,
        ),
        headers=CLOUDEVENTS,
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
    settings = settings_for(
        database_url,
        TIMEZONE="Europe/Berlin",
        DATA_DIR=str(data_dir),
        EVENT_BUS="dapr",
        DAPR_GRPC_ADDRESS=sidecar.grpc_address,
        DAPR_HTTP_ENDPOINT=sidecar.http_endpoint,
        **extra,
    )
    async with connect_publisher(sidecar) as publisher:
        wired = await bootstrap(settings, clock=clock, publisher=publisher)
        try:
            yield wired
        finally:
            await wired.close()
