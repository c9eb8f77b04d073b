"""Every worker by name: what `dueflow worker <name>` serves and the embedded host runs."""

from __future__ import annotations

from workers.audit import AUDIT_CONSUMER
from workers.consumer import Consumer

CONSUMERS: dict[str, Consumer] = {consumer.name: consumer for consumer in (AUDIT_CONSUMER,)}
