"""Fixtures for the notifications worker: a real webhook receiver on loopback that checks the
signature, and a runtime whose alice has a webhook to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.notifications import SECRET, Receiver
from tests.support.runtimes import embedded_runtime
from tests.support.servers import serving


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = Starlette(routes=[Route("/hooks/{name}", hook.handle, methods=["POST"])])
    async with serving(app) as base:
        hook.url = f"{base}/hooks/alice"
        yield hook


@pytest.fixture
async def hooked(
    database_url: str, tmp_path: Path, clock: FixedClock, receiver: Receiver
) -> AsyncIterator[Runtime]:
    """A runtime whose alice has a webhook to `receiver` (loopback, so private targets allowed)."""
    wired = await embedded_runtime(
        database_url,
        tmp_path,
        clock,
        WEBHOOKS=f"alice={receiver.url}",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE="true",
        WEBHOOK_TIMEOUT_SECONDS="0.5",
        NOTIFICATION_MAX_ATTEMPTS="3",
        NOTIFICATION_RETRY_SECONDS="10",
    )
    yield wired
    await wired.close()
