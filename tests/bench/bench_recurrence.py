"""How long recurrence rules that never match take to answer: bounded searches, timed.

    .venv/bin/python tests/bench/bench_recurrence.py [--rounds 5]

dateutil walks period by period up to year 9999 while a rule does not match, so these answers
are bounded (an up-front check, or the search's time limit, `domain.recurrence._SEARCH_SECONDS`).
The unit tests assert what each answers; this script times it, against the targets below, and
exits non-zero when the slowest round misses one. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from unittest import mock

from domain.due import parse_due
from domain.errors import ValidationFailed
from domain.recurrence import (
    Recurrence,
    RecurrenceAnchor,
    occurrences,
    parse_recurrence,
    series_start,
    validate_rule,
)


def refuse_a_day_no_month_has() -> None:
    due = parse_due("2026-12-01T09:00", "Europe/Berlin", "UTC")
    try:
        validate_rule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", due)
    except ValidationFailed:
        return
    raise AssertionError("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30 was accepted")


def a_series_that_never_matches() -> None:
    due = parse_due("2026-01-06T09:00", "Europe/Berlin", "UTC")
    rule = "FREQ=DAILY;INTERVAL=7;BYDAY=MO"  # every seventh day from a Tuesday: never a Monday
    series = Recurrence(rule, RecurrenceAnchor.SCHEDULE, "s", start=series_start(due))
    assert occurrences(series, due, None, 1) == []


def a_search_that_runs_out_of_time() -> None:
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")
    far = parse_due("2100-01-01T09:00", "Europe/Berlin", "UTC")
    rule, exdates = parse_recurrence("FREQ=HOURLY", due)
    series = Recurrence(rule, RecurrenceAnchor.SCHEDULE, "s", None, exdates)
    with mock.patch("domain.recurrence._SEARCH_SECONDS", 0.05):
        assert occurrences(series, due, far, 1) == []


# (what, how, target seconds for the slowest round)
CASES: list[tuple[str, Callable[[], None], float]] = [
    ("refuse BYMONTH=2;BYMONTHDAY=30", refuse_a_day_no_month_has, 2.0),
    ("a series that never matches (1 s search limit)", a_series_that_never_matches, 3.0),
    ("a search that runs out of time (0.05 s limit)", a_search_that_runs_out_of_time, 1.0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    missed = 0
    print(f"{'case':<50} {'p50 s':>8} {'max s':>8} {'target s':>9}")
    for what, case, target in CASES:
        seconds = []
        for _ in range(args.rounds):
            began = time.perf_counter()
            case()
            seconds.append(time.perf_counter() - began)
        slowest = max(seconds)
        missed += slowest > target
        mark = "" if slowest <= target else "  MISSED"
        print(f"{what:<50} {statistics.median(seconds):>8.3f} {slowest:>8.3f} {target:>9.1f}{mark}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
