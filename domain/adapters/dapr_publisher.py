"""Publish outbox events through the Dapr sidecar with the official SDK's async client.

Start-up never blocks for long and never crashes the process: the publisher waits a bounded
time for the sidecar's health endpoint, logs one line saying whether it answered, and otherwise
stays "not connected". Every publish while not connected raises PublishFailed, so the relay
keeps the outbox rows and retries with backoff; a later publish reconnects once the sidecar
answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Self

from domain.adapters.dapr_client import SidecarClient, describe_error
from domain.ports import OutboundMessage, PublishFailed

log = logging.getLogger("dueflow.dapr")


class DaprPublisher:
    """An EventPublisher that hands each message to the sidecar's pub/sub, in order."""

    def __init__(
        self,
        *,
        pubsub: str,
        grpc_address: str | None = None,
        http_endpoint: str | None = None,
        health_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        reconnect_probe_timeout: float = 1.0,
    ) -> None:
        self._pubsub = pubsub
        self._health_timeout = health_timeout
        self._publish_timeout = publish_timeout
        self._sidecar = SidecarClient(
            grpc_address,
            http_endpoint,
            probe_timeout=min(reconnect_probe_timeout, health_timeout),
            unreachable=_not_reachable,
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        *,
        pubsub: str,
        grpc_address: str | None = None,
        http_endpoint: str | None = None,
        health_timeout: float = 10.0,
        publish_timeout: float = 10.0,
    ) -> AsyncIterator[Self]:
        """A started publisher (connected or not, see `connected`), closed on leaving the block."""
        publisher = cls(
            pubsub=pubsub,
            grpc_address=grpc_address,
            http_endpoint=http_endpoint,
            health_timeout=health_timeout,
            publish_timeout=publish_timeout,
        )
        try:
            await publisher.start()
            yield publisher
        finally:
            await publisher.close()

    @property
    def connected(self) -> bool:
        return self._sidecar.connected

    @property
    def health_url(self) -> str:
        return self._sidecar.health_url

    async def start(self) -> bool:
        """Wait at most `health_timeout` for the sidecar; answer whether it is connected."""
        began = time.monotonic()
        error = await self._sidecar.connect(self._health_timeout)
        elapsed = time.monotonic() - began
        if error is None:
            log.info(
                "Dapr sidecar answered at %s after %.1fs; publishing to pub/sub %r via gRPC %s",
                self.health_url,
                elapsed,
                self._pubsub,
                self._sidecar.grpc_address,
            )
            return True
        log.warning(
            "Dapr sidecar did not answer at %s within %.1fs (%s); serving without it: events stay"
            " in the outbox and publishing retries until it answers (gRPC %s, pub/sub %r)",
            self.health_url,
            self._health_timeout,
            error,
            self._sidecar.grpc_address,
            self._pubsub,
        )
        return False

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        client = await self._sidecar.client()
        for message in messages:
            try:
                await asyncio.wait_for(
                    client.publish_event(
                        pubsub_name=self._pubsub,
                        topic_name=message.topic,
                        data=json.dumps(message.data, separators=(",", ":")),
                        data_content_type="application/json",
                        publish_metadata=message.metadata,
                    ),
                    timeout=self._publish_timeout,
                )
            except Exception as exc:
                cause = describe_error(exc)
                await self._sidecar.forget(client, exc)
                raise PublishFailed(
                    f"publishing {message.event_type} {message.event_id} to"
                    f" {self._pubsub}/{message.topic} failed: {cause}"
                ) from exc

    async def close(self) -> None:
        await self._sidecar.aclose()


def _not_reachable(why: str) -> PublishFailed:
    return PublishFailed(f"{why}; the events stay in the outbox and are retried")
