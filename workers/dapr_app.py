"""A worker as a Dapr app: programmatic subscriptions and one CloudEvent route per topic.

Every delivery is answered in Dapr's words, with HTTP 200 and a status body: SUCCESS once the
event is applied (or was already), RETRY for anything transient, DROP for a message that can
never be applied (Dapr then forwards it to the subscription's dead-letter topic). A failure is
never answered SUCCESS.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from domain.adapters.metrics import Refresher, Scrape, declare_consumer, pool_refresher
from domain.adapters.tracing import TRACEPARENT
from workers.consumer import Consumer, ConsumerRunner, MalformedEvent, Outcome, Received

log = logging.getLogger("dueflow.dapr_app")

# RETRY outranks DROP: a transient failure of one consumer deserves a redelivery, which the
# consumers that already applied the event ignore (their inbox has it).
_RANK = {Outcome.SUCCESS: 0, Outcome.DROP: 1, Outcome.RETRY: 2}
READY_TIMEOUT_SECONDS = 3.0  # a database that hangs is as unready as one that refuses


def running_beside(
    work: Callable[[asyncio.Event], Coroutine[Any, Any, None]], name: str
) -> Lifespan[Starlette]:
    """A lifespan that runs `work(stop)` as long as the app serves, and stops it after."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(work(stop), name=name)
        try:
            yield
        finally:
            stop.set()
            await task

    return lifespan


EVENTS = "/events"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}-dead-letter"


def event_route(topic: str, prefix: str = EVENTS) -> str:
    return f"{prefix}/{topic}"


@dataclasses.dataclass(frozen=True)
class Subscribed:
    """More consumers of one app, on their own pub/sub component and under their own routes
    (`<prefix>/<topic>`): the realtime app's feed group beside its per-replica push."""

    consumers: Sequence[Consumer]
    runner: ConsumerRunner
    pubsub_name: str
    prefix: str
    dead_letters: bool = True


def build_app(
    consumers: Sequence[Consumer],
    runner: ConsumerRunner,
    pubsub_name: str,
    *,
    sessions: async_sessionmaker[AsyncSession],
    routes: Sequence[BaseRoute] = (),
    lifespan: Lifespan[Starlette] | None = None,
    also: Sequence[Subscribed] = (),
    dead_letters: bool = True,
) -> Starlette:
    """The Starlette app Dapr delivers `consumers`' topics to; `sessions` answers /readyz;
    `routes` are the worker's own (jobs and bindings callbacks, the audit app's history API);
    `lifespan` runs what the worker does besides answering deliveries; `also` adds consumers on
    other components; without `dead_letters` the subscriptions name no dead-letter topic."""
    groups = [Subscribed(consumers, runner, pubsub_name, EVENTS, dead_letters), *also]
    subscriptions: list[dict[str, Any]] = []
    delivery_routes: list[BaseRoute] = []
    for group in groups:
        by_topic: dict[str, list[Consumer]] = {}
        for consumer in group.consumers:
            declare_consumer(consumer.name, consumer.topics)
            for topic in consumer.topics:
                by_topic.setdefault(topic, []).append(consumer)
        for topic in by_topic:
            subscription: dict[str, Any] = {
                "pubsubname": group.pubsub_name,
                "topic": topic,
                "route": event_route(topic, group.prefix),
                # we read CloudEvents: the envelope is their `data`
                "metadata": {"rawPayload": "false"},
            }
            if group.dead_letters:
                subscription["deadLetterTopic"] = dead_letter_topic(topic)
            subscriptions.append(subscription)
        delivery_routes.append(
            Route(group.prefix + "/{topic}", _delivery(by_topic, group.runner), methods=["POST"])
        )

    async def subscribe(request: Request) -> Response:
        return JSONResponse(subscriptions)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    return Starlette(
        routes=[
            Route("/dapr/subscribe", subscribe, methods=["GET"]),
            *delivery_routes,
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", _readiness(sessions), methods=["GET"]),
            Scrape(_pool_of(sessions)).route(),  # GET /metrics
            *routes,
        ],
        lifespan=lifespan,
    )


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def _delivery(by_topic: Mapping[str, Sequence[Consumer]], runner: ConsumerRunner) -> Endpoint:
    """POST /events/<topic>: apply the delivered event with every consumer of the topic and
    answer the most urgent outcome (RETRY over DROP over SUCCESS)."""

    async def deliver(request: Request) -> Response:
        topic = request.path_params["topic"]
        subscribers = by_topic.get(topic)
        if subscribers is None:
            log.warning("DROP: a message arrived on %r, which this app does not subscribe", topic)
            return _status(Outcome.DROP)
        body = await request.body()
        try:
            event = Received.parse(topic, envelope_of(body))
        except MalformedEvent as exc:
            log.warning("DROP: malformed message on %s (%s): %s", topic, _cloudevent_id(body), exc)
            return _status(Outcome.DROP)
        parent = request.headers.get(TRACEPARENT) or _cloudevent_traceparent(body)
        if parent:  # the trace as Dapr carries it on, past its own publish and delivery spans
            event = dataclasses.replace(event, parent=parent)
        outcome = Outcome.SUCCESS
        for consumer in subscribers:
            answer = await _apply(runner, consumer, event)
            outcome = max(outcome, answer, key=_RANK.__getitem__)
        return _status(outcome)

    return deliver


def _pool_of(sessions: async_sessionmaker[AsyncSession]) -> list[Refresher]:
    """The pool gauge's refresher, for the engine `sessions` are bound to."""
    engine = sessions.kw.get("bind")
    return [pool_refresher(engine)] if isinstance(engine, AsyncEngine) else []


def _readiness(sessions: async_sessionmaker[AsyncSession]) -> Endpoint:
    """GET /readyz: ready while the database answers within READY_TIMEOUT_SECONDS."""

    async def readyz(request: Request) -> Response:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), sessions() as session:
                await session.execute(sa.text("SELECT 1"))
        except Exception as exc:
            log.warning("not ready: the database does not answer: %s", exc)
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    return readyz


def _cloudevent_traceparent(body: bytes) -> str | None:
    """The CloudEvent's `traceparent` attribute, if the body is a CloudEvent that has one."""
    try:
        cloudevent = json.loads(body)
    except ValueError:
        return None
    value = cloudevent.get(TRACEPARENT) if isinstance(cloudevent, dict) else None
    return value if isinstance(value, str) else None


def envelope_of(body: bytes) -> Mapping[str, Any]:
    """The v1 envelope inside a CloudEvent as Dapr delivers it (structured JSON mode).

    `data` may be the JSON object itself, a JSON string of it, or base64 in `data_base64`; a body
    that is not a CloudEvent (no `specversion`, i.e. a raw payload) is taken as the envelope.
    """
    try:
        cloudevent = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedEvent(f"the body is not JSON: {exc}") from None
    if not isinstance(cloudevent, dict):
        raise MalformedEvent("the body is not a JSON object")
    if "specversion" not in cloudevent:
        return cloudevent
    if "data_base64" in cloudevent:
        try:
            data: Any = json.loads(base64.b64decode(cloudevent["data_base64"], validate=True))
        except (binascii.Error, TypeError, UnicodeDecodeError, ValueError) as exc:
            raise MalformedEvent(f"data_base64 is not base64 JSON: {exc}") from None
    elif "data" in cloudevent:
        data = cloudevent["data"]
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise MalformedEvent(f"data is a string but not JSON: {exc}") from None
    else:
        raise MalformedEvent("the CloudEvent carries no data")
    if not isinstance(data, dict):
        raise MalformedEvent("the CloudEvent's data is not a JSON object")
    return data


async def _apply(runner: ConsumerRunner, consumer: Consumer, event: Received) -> Outcome:
    try:
        outcome = await runner.process(consumer, event)
    except MalformedEvent as exc:
        log.warning("DROP: %s rejects %s: %s", consumer.name, _describe(event), exc)
        return Outcome.DROP
    except Exception:
        log.exception("RETRY: %s failed on %s", consumer.name, _describe(event))
        return Outcome.RETRY
    if outcome is not Outcome.SUCCESS:
        log.warning("%s: %s answered %s", outcome, consumer.name, _describe(event))
    return outcome


def _status(outcome: Outcome) -> Response:
    return JSONResponse({"status": outcome.value})


def _describe(event: Received) -> str:
    return f"event {event.event_id} ({event.event_type}, task {event.task_id}) on {event.topic}"


def _cloudevent_id(body: bytes) -> str:
    try:
        cloudevent = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return "no CloudEvent id"
    if isinstance(cloudevent, dict) and cloudevent.get("id"):
        return f"CloudEvent {cloudevent['id']}"
    return "no CloudEvent id"
