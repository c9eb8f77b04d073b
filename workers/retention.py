"""Audit retention: entries older than DUEFLOW_AUDIT_RETENTION_DAYS are deleted, and nothing else.

A run takes the `audit-retention` lease first (every replica of the audit app gets the cron tick;
one runs, the others skip), then deletes in batches of `batch` entries, one transaction each, so
no transaction holds many locks and the log stays writable meanwhile, until nothing older than
the window is left. The lease is renewed after every batch and the run stops if it was lost.
Embedded, the serving process runs it on a timer; with Dapr, a `bindings.cron` tick on the audit
app does (see workers/audit_api.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.history_sql import delete_older_than
from domain.adapters.leases import Leases, new_holder
from domain.adapters.metrics import RETENTION_DELETED, RETENTION_RUNS
from domain.ports import Clock

log = logging.getLogger("dueflow.retention")

LEASE = "audit-retention"
BATCH = 500
LEASE_TTL = dt.timedelta(minutes=5)
INTERVAL_SECONDS = 3600.0  # the embedded timer; dapr/components/audit-retention.yaml says @every 1h


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run did: `ran` is False when another run held the lease."""

    ran: bool
    cutoff: dt.datetime
    deleted: int = 0
    batches: int = 0


class AuditRetention:
    """Deletes audit entries older than `days`, in batches, under a lease."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        days: int,
        *,
        batch: int = BATCH,
        lease_ttl: dt.timedelta = LEASE_TTL,
        holder: str | None = None,
    ) -> None:
        if days < 1:
            raise ValueError("retention needs at least 1 day")
        if batch < 1:
            raise ValueError("a retention batch needs at least 1 entry")
        self.days = days
        self._sessions = sessions
        self._clock = clock
        self._batch = batch
        self._lease_ttl = lease_ttl
        self._holder = holder or new_holder()
        self._leases = Leases(sessions, clock)

    async def run(self) -> RetentionRun:
        """Delete every entry that occurred more than `days` ago, unless another run is going."""
        try:
            run = await self._run()
        except Exception:
            RETENTION_RUNS.labels("failed").inc()
            raise
        RETENTION_RUNS.labels("ran" if run.ran else "skipped").inc()
        RETENTION_DELETED.inc(run.deleted)
        return run

    async def _run(self) -> RetentionRun:
        cutoff = self._clock.now() - dt.timedelta(days=self.days)
        async with self._leases.hold(LEASE, self._holder, self._lease_ttl) as held:
            if not held:
                log.info("audit retention skipped: another run holds the %r lease", LEASE)
                return RetentionRun(ran=False, cutoff=cutoff)
            deleted = batches = 0
            while True:
                count = await self._delete_batch(cutoff)
                deleted += count
                batches += 1 if count else 0
                if count < self._batch:
                    break
                if not await self._leases.acquire(LEASE, self._holder, self._lease_ttl):
                    log.warning("audit retention stopped: the %r lease was lost", LEASE)
                    break
        log.info(
            "audit retention: %d entr%s before %s deleted in %d batch(es)",
            deleted,
            "y" if deleted == 1 else "ies",
            cutoff.isoformat(),
            batches,
        )
        return RetentionRun(ran=True, cutoff=cutoff, deleted=deleted, batches=batches)

    async def _delete_batch(self, cutoff: dt.datetime) -> int:
        return await delete_older_than(self._sessions, cutoff, self._batch)

    async def run_periodically(
        self, stop: asyncio.Event, interval_seconds: float = INTERVAL_SECONDS
    ) -> None:
        """Run now and then every `interval_seconds` until `stop` is set; a failed run is logged
        and the next one tries again."""
        while not stop.is_set():
            try:
                await self.run()
            except Exception:
                log.exception("audit retention failed; trying again in %.0f s", interval_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
