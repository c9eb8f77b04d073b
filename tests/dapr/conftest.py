"""Fixtures for the Dapr path: a fake sidecar and a publisher wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from domain.adapters.dapr_publisher import DaprPublisher
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import connect_publisher


@pytest.fixture
async def absent_sidecar() -> AsyncIterator[FakeDaprSidecar]:
    """A fake sidecar whose ports are chosen but which is not started yet."""
    fake = FakeDaprSidecar()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def publisher(sidecar: FakeDaprSidecar) -> AsyncIterator[DaprPublisher]:
    async with connect_publisher(sidecar) as connected:
        assert connected.connected
        yield connected
