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
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Self

import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.conf import settings as dapr_settings

from domain.ports import OutboundMessage, PublishFailed

log = logging.getLogger("dueflow.dapr")

HEALTH_PATH = "/v1.0/healthz/outbound"
# Codes after which the channel is not trusted any more: the next publish probes and reconnects.
_CONNECTION_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})


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
        self._grpc_address = grpc_address or default_grpc_address()
        self._http_endpoint = (http_endpoint or default_http_endpoint()).rstrip("/")
        self._health_timeout = health_timeout
        self._publish_timeout = publish_timeout
        self._probe_timeout = min(reconnect_probe_timeout, health_timeout)
        self._client: DaprClient | None = None
        self._lock = asyncio.Lock()

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
        return self._client is not None

    @property
    def health_url(self) -> str:
        return self._http_endpoint + HEALTH_PATH

    async def start(self) -> bool:
        """Wait at most `health_timeout` for the sidecar; answer whether it is connected."""
        began = time.monotonic()
        error = await self._wait_healthy(self._health_timeout)
        elapsed = time.monotonic() - began
        if error is None:
            error = await self._open_client()
        if error is None:
            log.info(
                "Dapr sidecar answered at %s after %.1fs; publishing to pub/sub %r via gRPC %s",
                self.health_url,
                elapsed,
                self._pubsub,
                self._grpc_address,
            )
            return True
        log.warning(
            "Dapr sidecar did not answer at %s within %.1fs (%s); serving without it: events stay"
            " in the outbox and publishing retries until it answers (gRPC %s, pub/sub %r)",
            self.health_url,
            self._health_timeout,
            error,
            self._grpc_address,
            self._pubsub,
        )
        return False

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        client = await self._client_or_reconnect()
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
                if _connection_lost(exc):
                    await self._drop_client(client)
                raise PublishFailed(
                    f"publishing {message.event_type} {message.event_id} to"
                    f" {self._pubsub}/{message.topic} failed: {cause}"
                ) from exc

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await _close(client)

    async def _client_or_reconnect(self) -> DaprClient:
        async with self._lock:
            if self._client is not None:
                return self._client
            error = await self._wait_healthy(self._probe_timeout)
            if error is None:
                error = await self._open_client_locked()
            if self._client is None:
                raise PublishFailed(
                    f"Dapr sidecar not reachable at {self.health_url} ({error}); the events stay"
                    " in the outbox and are retried"
                )
            log.info("Dapr sidecar answered at %s again; reconnected", self.health_url)
            return self._client

    async def _open_client(self) -> str | None:
        async with self._lock:
            return await self._open_client_locked()

    async def _open_client_locked(self) -> str | None:
        """Create the SDK client; answer None, or why it could not be created."""
        try:
            with sdk_health_check(self._http_endpoint, self._probe_timeout):
                self._client = DaprClient(address=self._grpc_address)
        except Exception as exc:
            return describe_error(exc)
        return None

    async def _drop_client(self, client: DaprClient) -> None:
        async with self._lock:
            if self._client is client:
                self._client = None
        await _close(client)

    async def _wait_healthy(self, budget: float) -> str | None:
        """Poll the health endpoint for up to `budget` seconds; None once it answers 2xx."""
        error = "no answer"
        deadline = time.monotonic() + budget
        async with httpx.AsyncClient() as http:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return error
                try:
                    response = await http.get(self.health_url, timeout=max(remaining, 0.05))
                    if response.is_success:
                        return None
                    error = f"health answered HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = describe_error(exc)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return error
                await asyncio.sleep(min(0.25, remaining))


@contextlib.contextmanager
def sdk_health_check(http_endpoint: str, timeout: float) -> Iterator[None]:
    """Point the SDK's own start-up health check at our sidecar, briefly and quietly.

    DaprClient() runs a *synchronous* health check (dapr.clients.health.DaprHealth, urllib) that
    reads only the global dapr.conf.settings (DAPR_HTTP_ENDPOINT, DAPR_HEALTH_TIMEOUT, default 60
    s), blocks the event loop while it polls and print()s its failures to stdout, which belongs to
    the MCP stdio transport. Our own async probe has just succeeded, so the SDK's check is cut to
    `timeout`; the two settings are set only for the duration of the constructor (no await runs
    in between) and stdout is redirected to stderr meanwhile.
    """
    overrides: dict[str, Any] = {
        "DAPR_HTTP_ENDPOINT": http_endpoint,
        "DAPR_HEALTH_TIMEOUT": timeout,
    }
    saved = {name: vars(dapr_settings).get(name, _UNSET) for name in overrides}
    for name, value in overrides.items():
        setattr(dapr_settings, name, value)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for name, value in saved.items():
            if value is _UNSET:
                delattr(dapr_settings, name)
            else:
                setattr(dapr_settings, name, value)


_UNSET = object()


def default_grpc_address() -> str:
    """Where the SDK would look: DAPR_GRPC_ENDPOINT, else DAPR_RUNTIME_HOST:DAPR_GRPC_PORT."""
    endpoint = dapr_settings.DAPR_GRPC_ENDPOINT
    if endpoint:
        return str(endpoint)
    return f"{dapr_settings.DAPR_RUNTIME_HOST}:{dapr_settings.DAPR_GRPC_PORT}"


def default_http_endpoint() -> str:
    """Where the SDK would look: DAPR_HTTP_ENDPOINT, else http://DAPR_RUNTIME_HOST:DAPR_HTTP_PORT."""
    endpoint = dapr_settings.DAPR_HTTP_ENDPOINT
    if endpoint:
        return str(endpoint)
    return f"http://{dapr_settings.DAPR_RUNTIME_HOST}:{dapr_settings.DAPR_HTTP_PORT}"


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, DaprGrpcError):
        code = exc.code()  # type: ignore[no-untyped-call]
        return getattr(code, "name", str(code)) in _CONNECTION_CODES
    return False


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, DaprGrpcError):
        code = exc.code()  # type: ignore[no-untyped-call]
        details = exc.details()  # type: ignore[no-untyped-call]
        return f"gRPC {getattr(code, 'name', code)}: {details}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _close(client: DaprClient) -> None:
    try:
        await client.close()  # type: ignore[no-untyped-call]
    except Exception as exc:
        log.debug("closing the Dapr client failed: %s", exc)
