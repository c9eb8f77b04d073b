"""Reminder jobs on the Dapr scheduler (Jobs API) through the official SDK's async client.

One job per pending reminder, named by the reminder's id, due once at its UTC moment (RFC 3339
with a Z) and scheduled with overwrite, so a moved reminder replaces its job. When it is due the
sidecar calls the reminders app at POST /job/<name>.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Self

from dapr.clients import Job
from dapr.clients.exceptions import DaprGrpcError
from google.protobuf.any_pb2 import Any as GrpcAny
from google.protobuf.wrappers_pb2 import StringValue

from domain.adapters.dapr_client import SidecarClient, describe_error
from domain.due import iso_utc
from domain.reminder_schedule import ScheduledReminder

log = logging.getLogger("dueflow.dapr.jobs")


class JobRequestFailed(Exception):
    """The sidecar did not take a job request; the caller retries."""


class DaprJobs:
    """A JobScheduler on the Dapr sidecar; the client is created on first use."""

    def __init__(
        self,
        grpc_address: str | None = None,
        http_endpoint: str | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self._sidecar = SidecarClient(
            grpc_address, http_endpoint, probe_timeout=timeout, unreachable=JobRequestFailed
        )
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def schedule(self, reminder: ScheduledReminder) -> None:
        data = GrpcAny()
        data.Pack(StringValue(value=json.dumps(job_data(reminder), separators=(",", ":"))))
        job = Job(name=reminder.id, due_time=iso_utc(reminder.fire_at), data=data)
        client = await self._sidecar.client()
        try:
            await asyncio.wait_for(client.schedule_job(job, overwrite=True), self._timeout)
        except Exception as exc:
            await self._sidecar.forget(client, exc)
            raise JobRequestFailed(f"scheduling job {reminder.id}: {describe_error(exc)}") from exc

    async def cancel(self, reminder_id: str) -> None:
        client = await self._sidecar.client()
        try:
            await asyncio.wait_for(client.delete_job(reminder_id), self._timeout)
        except DaprGrpcError as exc:
            # a job that fired or never was is gone already; a job left behind by a failed
            # delete fires into a row that is no longer pending and does nothing
            log.info("deleting job %s: %s (ignored)", reminder_id, describe_error(exc))
        except Exception as exc:
            await self._sidecar.forget(client, exc)
            log.warning("deleting job %s failed: %s (ignored)", reminder_id, describe_error(exc))

    async def aclose(self) -> None:
        await self._sidecar.aclose()


def job_data(reminder: ScheduledReminder) -> dict[str, str]:
    """What a reminder's job carries: enough to find its row and to log it."""
    return {
        "reminder_id": reminder.id,
        "task_id": reminder.task_id,
        "user_id": reminder.user_id,
        "fire_at": iso_utc(reminder.fire_at),
    }
