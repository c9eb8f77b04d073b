"""Every worker by name: what `dueflow worker <name>` serves and the embedded host runs."""

from __future__ import annotations

from domain.clock import SystemClock
from domain.ports import Clock
from workers.audit import AUDIT_CONSUMER
from workers.consumer import Consumer
from workers.recurrence import recurrence_consumer


def build_consumers(clock: Clock, default_timezone: str = "UTC") -> dict[str, Consumer]:
    """The workers of one process, sharing its clock."""
    consumers = (AUDIT_CONSUMER, recurrence_consumer(clock, default_timezone))
    return {consumer.name: consumer for consumer in consumers}


WORKER_NAMES: tuple[str, ...] = tuple(sorted(build_consumers(SystemClock())))
