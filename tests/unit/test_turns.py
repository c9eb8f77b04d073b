"""The moment a user's day turns, in their zone, across DST changes."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from domain.clock import FixedClock
from domain.turns import Turn, TurnSchedule, next_day_start
from tests.support.runtimes import NOW
from tests.support.waiting import eventually


def test_the_day_turns_at_local_midnight_in_the_users_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert next_day_start(dt.date(2026, 11, 23), berlin) == dt.datetime(
        2026, 11, 23, 23, tzinfo=dt.UTC
    )
    # the night summer time ends (25 hours): still at midnight
    assert next_day_start(dt.date(2026, 10, 25), berlin) == dt.datetime(
        2026, 10, 25, 23, tzinfo=dt.UTC
    )


def test_a_day_whose_midnight_a_dst_change_skips_begins_at_its_first_moment() -> None:
    santiago = ZoneInfo("America/Santiago")  # 2026-09-06 starts at 01:00 (-03)
    turn = next_day_start(dt.date(2026, 9, 5), santiago)
    assert turn == dt.datetime(2026, 9, 6, 4, tzinfo=dt.UTC)
    assert turn.astimezone(santiago).date() == dt.date(2026, 9, 6)


class CountingDues:
    """An OpenDues with no dues that counts the look-ups of a user's next due."""

    def __init__(self) -> None:
        self.looked = 0

    async def next_due(self, user_id: str, at_or_after: dt.datetime) -> dt.datetime | None:
        self.looked += 1
        return None

    async def fell_due(
        self,
        user_id: str,
        since: dt.datetime,
        until: dt.datetime,
        days: tuple[dt.date, dt.date],
        limit: int,
    ) -> list[str]:
        return []


async def test_a_stream_of_changes_costs_a_look_up_per_gathering_not_per_change() -> None:
    dues = CountingDues()

    async def tell(turn: Turn) -> None:
        return None

    schedule = TurnSchedule(dues, FixedClock(NOW), ZoneInfo("Europe/Berlin"), tell, gather=0.5)
    schedule.watch("alice")
    try:
        await eventually(lambda: dues.looked == 1, what="the first look-up")
        schedule.reconsider("alice")  # a lone change is looked at at once
        await eventually(lambda: dues.looked == 2, what="the change's look-up")
        for _ in range(50):  # then a stream of them, within the gathering
            schedule.reconsider("alice")
            await asyncio.sleep(0.002)
        await eventually(lambda: dues.looked == 3, what="one look-up for the stream")
        await asyncio.sleep(0.6)
        assert dues.looked == 3
    finally:
        await schedule.aclose()
