"""Leases: one holder at a time, expiry, renewal, release. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.leases import Leases, new_holder
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.database import rows

TTL = dt.timedelta(minutes=5)


@pytest.fixture
def leases(sessions: async_sessionmaker[AsyncSession], clock: FixedClock) -> Leases:
    return Leases(sessions, clock)


async def test_a_free_lease_goes_to_the_first_holder_and_not_to_a_second(leases: Leases) -> None:
    assert await leases.acquire("sweep", "replica-a", TTL) is True
    assert await leases.acquire("sweep", "replica-b", TTL) is False
    assert await leases.holder("sweep") == "replica-a"
    # another name is another lease
    assert await leases.acquire("other", "replica-b", TTL) is True


async def test_the_holder_renews_and_an_expired_lease_is_taken_over(
    leases: Leases, clock: FixedClock, runtime: Runtime
) -> None:
    await leases.acquire("sweep", "replica-a", TTL)
    clock.advance(dt.timedelta(minutes=4))
    assert await leases.acquire("sweep", "replica-a", TTL) is True  # renewed to 4 + 5 minutes
    clock.advance(dt.timedelta(minutes=4))
    assert await leases.acquire("sweep", "replica-b", TTL) is False
    clock.advance(dt.timedelta(minutes=1))  # exactly at expiry
    assert await leases.holder("sweep") is None
    assert await leases.acquire("sweep", "replica-b", TTL) is True
    # the old holder's late release leaves the new holder's lease alone
    assert await leases.release("sweep", "replica-a") is False
    assert await leases.holder("sweep") == "replica-b"
    assert [tuple(r) for r in await rows(runtime, "SELECT name, holder FROM leases")] == [
        ("sweep", "replica-b")
    ]


async def test_release_frees_the_lease_at_once(leases: Leases) -> None:
    await leases.acquire("sweep", "replica-a", TTL)
    assert await leases.release("sweep", "replica-a") is True
    assert await leases.holder("sweep") is None
    assert await leases.acquire("sweep", "replica-b", TTL) is True


async def test_hold_releases_on_leaving_even_by_an_exception(leases: Leases) -> None:
    with pytest.raises(RuntimeError):
        async with leases.hold("sweep", "replica-a", TTL) as held:
            assert held is True
            assert await leases.holder("sweep") == "replica-a"
            raise RuntimeError("the job failed")
    assert await leases.holder("sweep") is None
    async with leases.hold("sweep", "replica-b", TTL) as first:
        async with leases.hold("sweep", "replica-c", TTL) as second:
            assert (first, second) == (True, False)
        assert await leases.holder("sweep") == "replica-b"  # the loser released nothing


async def test_replicas_racing_for_a_lease_never_both_win(leases: Leases) -> None:
    holders = [new_holder() for _ in range(6)]
    won = await asyncio.gather(*(leases.acquire("sweep", h, TTL) for h in holders))
    assert won.count(True) == 1
    assert await leases.holder("sweep") == holders[won.index(True)]


async def test_a_lease_needs_a_positive_ttl(leases: Leases) -> None:
    with pytest.raises(ValueError, match="positive ttl"):
        await leases.acquire("sweep", "replica-a", dt.timedelta(0))
