"""Backoff: waits that double per failure up to a cap, jittered within bounds, for so many tries."""

from __future__ import annotations

import random

import pytest

from domain.backoff import Backoff


def test_the_wait_starts_at_base_and_doubles_per_failure() -> None:
    backoff = Backoff(base=0.5)
    assert [backoff.delay(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_the_wait_never_exceeds_the_cap() -> None:
    backoff = Backoff(base=10.0, cap=3600.0)
    assert backoff.delay(9) == 2560.0
    assert backoff.delay(10) == 3600.0
    assert backoff.delay(10_000) == 3600.0  # a row failing for days does not overflow


def test_a_base_above_the_cap_waits_the_cap() -> None:
    assert Backoff(base=120.0, cap=60.0).delay(1) == 60.0


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0])
def test_jitter_takes_away_at_most_its_share_of_the_wait(
    jitter: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=jitter)
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    assert backoff.delay(3) == pytest.approx(4.0 * (1.0 - jitter))
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    assert backoff.delay(3) == 4.0
    assert backoff.delay(20) == 60.0


def test_jittered_waits_stay_between_the_bounds() -> None:
    backoff = Backoff(base=0.5, cap=60.0, jitter=0.5)
    for attempt in range(1, 12):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


def test_attempts_bound_the_tries_the_first_included() -> None:
    backoff = Backoff(base=0.05, attempts=4)
    assert [backoff.tries_again(attempt) for attempt in range(1, 6)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_without_attempts_it_tries_for_ever() -> None:
    assert Backoff(base=1.0).tries_again(1_000_000)


@pytest.mark.parametrize(
    "arguments",
    [
        {"base": 0.0},
        {"base": 1.0, "cap": 0.0},
        {"base": 1.0, "jitter": 1.5},
        {"base": 1.0, "jitter": -0.1},
        {"base": 1.0, "attempts": 0},
    ],
)
def test_a_backoff_that_cannot_work_is_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**arguments)  # type: ignore[arg-type]
