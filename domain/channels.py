"""Notification channels: the port every channel adapter fills, and the always-on log channel."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Notification:
    """One delivery as a channel sees it: which trigger, for whom, and what to say."""

    delivery_id: int
    event_id: str
    user_id: str
    task_id: str
    message: dict[str, Any]
    attempt: int  # 1 for the first try


@dataclass(frozen=True, slots=True)
class Sent:
    """A channel's answer: delivered, or skipped with the reason (nobody to deliver to)."""

    skipped: str | None = None


class DeliveryFailed(Exception):
    """The channel could not deliver; `retry` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Channel(Protocol):
    name: str

    async def send(self, notification: Notification) -> Sent:
        """Deliver one notification; raise DeliveryFailed when it did not arrive."""
        ...


class LogChannel:
    """Writes each notification as one structured line to the `dueflow.reminders` logger."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        # the logger writes to stderr (configured by the CLI): stdout is the MCP stdio transport's
        self._log = logger or logging.getLogger("dueflow.reminders")

    async def send(self, notification: Notification) -> Sent:
        message = notification.message
        line = {
            "event_id": notification.event_id,
            "user_id": notification.user_id,
            "task_id": notification.task_id,
            "reminder_id": message.get("reminder", {}).get("reminder_id"),
            "text": message.get("text"),
        }
        self._log.info("reminder %s", json.dumps(line, sort_keys=True))
        return Sent()
