"""A fake Dapr mesh for processes: one fake sidecar per app (each on its own addresses), and
between them what daprd and Kafka would do — deliver each published event to every app that
subscribes to its topic (programmatic subscriptions, CloudEvents, SUCCESS/RETRY/DROP, retries by
the resiliency policy, then the dead-letter topic), fire the scheduler's jobs on the app that
scheduled them, and forward service invocation over HTTP to the callee's port, headers and
status unchanged. The state stores are shared, as one PostgreSQL behind every sidecar.

Not daprd: deliveries to one app go one at a time in publish order (one partition), and a
retry blocks that app's later deliveries, as a Kafka partition would."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from tests.fakes.dapr_sidecar import FakeDaprSidecar, Published

log = logging.getLogger("tests.mesh")

FIRST_INTERVAL, MULTIPLIER = 0.5, 1.5  # Dapr's exponential retry: fixed first wait and growth


@dataclass(frozen=True)
class RetryPolicy:
    """A resiliency retry policy: exponential, capped at `max_interval` seconds."""

    max_interval: float
    max_retries: int

    def waits(self) -> list[float]:
        waits = [FIRST_INTERVAL * MULTIPLIER**n for n in range(self.max_retries)]
        return [min(wait, self.max_interval) for wait in waits]


@dataclass
class Delivery:
    """One attempt to hand an event to an app, and what the app answered."""

    app_id: str
    topic: str
    event_id: str
    answer: str  # SUCCESS, RETRY, DROP, or the HTTP status / transport error


@dataclass
class MeshApp:
    app_id: str
    sidecar: FakeDaprSidecar
    port: int | None = None  # the app's own port, once it listens
    subscriptions: list[dict[str, Any]] | None = None  # read once it listens, as daprd does
    queue: asyncio.Queue[Published] = field(default_factory=asyncio.Queue)


class FakeMesh:
    """Sidecars for `app_ids`, wired to each other."""

    def __init__(self, app_ids: Sequence[str], policy: RetryPolicy) -> None:
        self.policy = policy
        states: dict[str, Any] = {}
        self.apps = {app_id: MeshApp(app_id, FakeDaprSidecar()) for app_id in app_ids}
        for app in self.apps.values():
            app.sidecar.states = states  # one PostgreSQL behind every state store
            for other in self.apps:
                app.sidecar.route_app(other, self._proxy(other))
        self.deliveries: list[Delivery] = []
        self.dead_letters: list[tuple[str, Published]] = []
        self.fired_jobs: list[tuple[str, str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._seen: dict[str, int] = {app_id: 0 for app_id in app_ids}
        self._client = httpx.AsyncClient(timeout=30)

    def sidecar(self, app_id: str) -> FakeDaprSidecar:
        return self.apps[app_id].sidecar

    def listening(self, app_id: str, port: int) -> None:
        """The app `app_id` serves on `port` from now on (its subscriptions are read again)."""
        self.apps[app_id].port = port
        self.apps[app_id].subscriptions = None

    async def start(self) -> None:
        for app in self.apps.values():
            await app.sidecar.start()
            self._tasks.append(asyncio.create_task(self._deliver_to(app)))
        self._tasks.append(asyncio.create_task(self._route_published()))
        self._tasks.append(asyncio.create_task(self._run_jobs()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for app in self.apps.values():
            await app.sidecar.stop()
        await self._client.aclose()

    async def _route_published(self) -> None:
        """Every event a sidecar took in goes to each app's queue (each app its consumer group)."""
        while True:
            for app_id, app in self.apps.items():
                published = app.sidecar.published[self._seen[app_id] :]
                self._seen[app_id] += len(published)
                for event in published:
                    for target in self.apps.values():
                        target.queue.put_nowait(event)
            await asyncio.sleep(0.02)

    async def _deliver_to(self, app: MeshApp) -> None:
        while True:
            event = await app.queue.get()
            route = await self._route(app, event)
            if route is None:
                continue  # the app does not subscribe to this topic
            path, dead_letter_topic = route
            outcome = await self._with_retries(app, event, path)
            if outcome != "SUCCESS" and dead_letter_topic:
                self.dead_letters.append((dead_letter_topic, event))

    async def _route(self, app: MeshApp, event: Published) -> tuple[str, str] | None:
        while app.subscriptions is None:  # daprd reads the subscriptions once the app listens
            if app.port is None:
                await asyncio.sleep(0.05)
                continue
            answer = await self._client.get(f"http://127.0.0.1:{app.port}/dapr/subscribe")
            # an app without the route subscribes to nothing, as daprd reads a 404
            app.subscriptions = answer.json() if answer.is_success else []
        subscriptions = app.subscriptions
        for subscription in subscriptions:
            if (subscription["pubsubname"], subscription["topic"]) == (
                event.pubsub_name,
                event.topic,
            ):
                return subscription["route"], subscription.get("deadLetterTopic", "")
        return None

    async def _with_retries(self, app: MeshApp, event: Published, path: str) -> str:
        body = cloudevent(event, app.app_id)
        for wait in [*self.policy.waits(), None]:
            outcome = await self._attempt(app, event, path, body)
            if outcome in ("SUCCESS", "DROP"):
                return outcome
            if wait is None:
                return "RETRY"
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _attempt(self, app: MeshApp, event: Published, path: str, body: bytes) -> str:
        try:
            headers = {"content-type": "application/cloudevents+json"}
            if "cloudevent.traceparent" in event.metadata:  # daprd hands the trace on
                headers["traceparent"] = event.metadata["cloudevent.traceparent"]
            answer = await self._client.post(
                f"http://127.0.0.1:{app.port}{path}", content=body, headers=headers
            )
        except httpx.TransportError as exc:
            outcome, said = "RETRY", type(exc).__name__
        else:
            said = str(answer.status_code)
            status = answer.json().get("status", "SUCCESS") if answer.content else "SUCCESS"
            outcome = status if answer.is_success else "RETRY"
            said = status if answer.is_success else said
        self.deliveries.append(
            Delivery(app.app_id, event.topic, event.metadata.get("cloudevent.id", ""), said)
        )
        return outcome

    async def _run_jobs(self) -> None:
        """Call POST /job/<name> on the app whose sidecar holds a job once it is due."""
        while True:
            now = dt.datetime.now(dt.UTC)
            for app in self.apps.values():
                for name, job in list(app.sidecar.jobs.items()):
                    due = dt.datetime.fromisoformat(job.due_time.replace("Z", "+00:00"))
                    if due <= now and app.port is not None:
                        with contextlib.suppress(httpx.TransportError):
                            url = f"http://127.0.0.1:{app.port}/job/{name}"
                            answer = await self._client.post(url, content=b"{}")
                            if answer.is_success and app.sidecar.jobs.get(name) is job:
                                del app.sidecar.jobs[name]
                                self.fired_jobs.append((app.app_id, name))
            await asyncio.sleep(0.05)

    def _proxy(self, app_id: str) -> Any:
        """An ASGI app that forwards an invocation to `app_id`'s port, as daprd does."""

        async def forward(scope: Scope, receive: Receive, send: Send) -> None:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            port = self.apps[app_id].port
            headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k != b"host"]
            query = scope.get("query_string", b"").decode()
            url = f"http://127.0.0.1:{port}{scope['path']}" + (f"?{query}" if query else "")
            try:
                answer = await self._client.request(
                    scope["method"], url, content=body, headers=headers
                )
                status, content = answer.status_code, answer.content
                kind = answer.headers.get("content-type", "application/octet-stream")
            except httpx.TransportError:
                status, kind = 500, "application/json"
                content = json.dumps({"errorCode": "ERR_DIRECT_INVOKE"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-type", kind.encode())],
                }
            )
            await send({"type": "http.response.body", "body": content})

        return forward


def cloudevent(event: Published, app_id: str) -> bytes:
    """The CloudEvent daprd hands a subscriber: the published JSON as `data`, its id, type and
    traceparent from the publish metadata."""
    document = {
        "specversion": "1.0",
        "id": event.metadata.get("cloudevent.id", ""),
        "type": event.metadata.get("cloudevent.type", "com.dapr.event.sent"),
        "source": app_id,
        "datacontenttype": "application/json",
        "pubsubname": event.pubsub_name,
        "topic": event.topic,
        "data": json.loads(event.data),
    }
    if "cloudevent.traceparent" in event.metadata:
        document["traceparent"] = event.metadata["cloudevent.traceparent"]
    return json.dumps(document).encode()
