"""The notifications worker's side of the tests: reminder triggers as the reminders worker
publishes them, the delivery rows, and a webhook endpoint that checks every signature."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dueflow.bootstrap import Runtime
from tests.support.database import messages
from workers.notifications import DELIVERIES

SECRET = "whsec-0123456789abcdef0123456789"
FIRED_AT = "2026-11-23T10:00:00Z"
LATER = dt.timedelta(hours=2)  # past any backoff of these tests


def trigger(
    user_id: str = "alice",
    title: str = "Renew the passport",
    event_type: str = "REMINDER_TRIGGERED",
    task_id: str | None = None,
    **reminder: Any,
) -> dict[str, Any]:
    """A v1 REMINDER_TRIGGERED envelope as the reminders worker publishes it."""
    task_id = task_id or str(uuid.uuid4())
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "task_id": task_id,
        "user_id": user_id,
        "sequence": 3,
        "timestamp": FIRED_AT,
        "payload": {
            "task": {
                "id": task_id,
                "user_id": user_id,
                "title": title,
                "description": None,
                "status": "open",
                "priority": "high",
                "ical_priority": 1,
                "tags": ["admin"],
                "due": {
                    "datetime": "2026-11-23T11:15:00+01:00",
                    "utc": "2026-11-23T10:15:00Z",
                    "timezone": "Europe/Berlin",
                    "all_day": False,
                },
                "reminders": ["PT15M"],
                "recurrence": None,
                "version": 3,
            },
            "changes": {},
            "reminder": {
                "reminder_id": f"{task_id}-pt15m",
                "spec": "PT15M",
                "fire_at": FIRED_AT,
                "state": "fired",
                "fired_at": FIRED_AT,
                "late": False,
                "reason": None,
                **reminder,
            },
        },
        "metadata": {
            "source": "dueflow.reminders",
            "version": "v1",
            "correlation_id": None,
            "causation_id": None,
        },
    }


async def publish(runtime: Runtime, *envelopes: dict[str, Any]) -> None:
    """Hand envelopes to the runtime's embedded bus, as the relay does."""
    await runtime.workers.bus.publish(messages(list(envelopes), "reminders"))


async def deliveries(runtime: Runtime) -> list[dict[str, Any]]:
    """Every delivery row, typed (aware datetimes, JSON), oldest first."""
    async with runtime.engine.connect() as conn:
        found = await conn.execute(sa.select(DELIVERIES).order_by(DELIVERIES.c.id))
        return [dict(row) for row in found.mappings()]


@dataclass
class Post:
    """One POST the receiver got, with whether its signature held."""

    body: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool


@dataclass
class Receiver:
    """A webhook endpoint: answers the queued statuses (then 200) and checks every signature."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    received: list[Post] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        timestamp = request.headers.get("x-dueflow-timestamp", "")
        expected = hmac.new(
            SECRET.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        ok = hmac.compare_digest(
            request.headers.get("x-dueflow-signature", ""), f"sha256={expected}"
        )
        self.received.append(Post(json.loads(raw), dict(request.headers), ok))
        if self.delay_seconds:  # a slow webhook is the behaviour under test, not a wait for one
            await asyncio.sleep(self.delay_seconds)
        status = self.statuses.pop(0) if self.statuses else 200
        if not ok:
            status = 401
        return JSONResponse({"ok": status < 300}, status_code=status)
