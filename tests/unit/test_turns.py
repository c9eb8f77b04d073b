"""The moment a user's day turns, in their zone, across DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from domain.turns import next_day_start


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
