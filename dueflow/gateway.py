"""The realtime gateway's wiring: its hub, feed, grants and routes, from the settings."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from domain.access import PersonalTokens
from domain.adapters.access_sql import SqlTokenStore
from domain.adapters.open_dues_sql import SqlOpenDues
from domain.due import zone
from domain.ports import Clock
from domain.turns import Turn, TurnSchedule
from dueflow.bootstrap import Runtime
from dueflow.identity import bearer_identity
from dueflow.settings import Settings
from workers.board import Board
from workers.consumer import Consumer, ConsumerRunner
from workers.gateway import Gateway, GatewayConfig, time_message
from workers.grants import Grants, Lifetimes
from workers.live_hub import Hub
from workers.realtime import Feed, push_consumer

FEED_ROUTES = "/events/feed"  # where the feed's shared group is delivered (docs/realtime.md)


def hub_for(settings: Settings) -> Hub:
    return Hub(settings.realtime_queue_size)


def grants_for(settings: Settings, engine: AsyncEngine, clock: Clock) -> Grants:
    lifetimes = Lifetimes(
        ticket=dt.timedelta(seconds=settings.realtime_ticket_seconds),
        session=dt.timedelta(hours=settings.realtime_session_hours),
    )
    return Grants(engine, clock, lifetimes)


def turns_for(hub: Hub, engine: AsyncEngine, clock: Clock, user_zone: ZoneInfo) -> TurnSchedule:
    """The schedule of time passing for the hub's users: each turn goes to their connections
    as a `time` message."""

    async def tell(turn: Turn) -> None:
        hub.announce(turn.user_id, time_message(turn))

    turns = TurnSchedule(SqlOpenDues(engine), clock, user_zone, tell)
    hub.keep_time(turns)
    return turns


def gateway_routes(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    hub: Hub,
) -> list[BaseRoute]:
    """POST /realtime/tickets, the /realtime/ws socket and the /board routes; the hub's users
    are told of time passing (`time` messages) from here on."""
    gateway = Gateway(
        hub,
        Feed(sessions),
        grants_for(settings, engine, clock),
        bearer_identity(settings, PersonalTokens(SqlTokenStore(engine), clock)),
        GatewayConfig(
            origins=tuple(settings.allowed_origin_list()),
            heartbeat_seconds=settings.realtime_heartbeat_seconds,
        ),
    )
    user_zone = zone(settings.timezone)
    turns_for(hub, engine, clock, user_zone)
    board = Board(gateway, sessions, clock, user_zone)
    return [*gateway.routes(), *board.routes()]


def embedded_gateway_routes(runtime: Runtime, clock: Clock | None = None) -> list[BaseRoute]:
    """The gateway inside `dueflow serve` (embedded): fed by the in-process realtime consumer."""
    assert runtime.workers is not None
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    return gateway_routes(
        runtime.settings, runtime.engine, sessions, clock or runtime.clock, runtime.workers.hub
    )


def realtime_app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    feed_writer: Consumer,
    runner: ConsumerRunner,
    hub: Hub,
    routes: list[BaseRoute],
) -> Starlette:
    """`dueflow worker realtime` as a Dapr app: every replica pushes each change it receives on
    DUEFLOW_DAPR_PUBSUB (its own consumer) from the feed, and the feed is written once by
    whichever replica DUEFLOW_REALTIME_FEED_PUBSUB's shared group hands the change to."""
    from workers.dapr_app import Subscribed, build_app  # the Dapr app's only: not `serve`'s

    writer = Subscribed([feed_writer], runner, settings.realtime_feed_pubsub, FEED_ROUTES)
    return build_app(
        [push_consumer(Feed(sessions), hub.deliver)],
        runner,
        settings.dapr_pubsub,
        sessions=sessions,
        routes=routes,
        also=[writer],
        dead_letters=False,  # a push that gives up loses nothing: the change is in the feed
    )
