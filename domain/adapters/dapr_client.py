"""The SDK's async DaprClient, created once the sidecar answers and dropped when its channel is
lost, shared by the calls of one adapter (publisher, jobs, state store)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.conf import settings as dapr_settings

from domain.adapters.dapr_invocation import default_http_endpoint

log = logging.getLogger("dueflow.dapr")

HEALTH_PATH = "/v1.0/healthz/outbound"
# Codes after which the channel is not trusted any more: the next call probes and reconnects.
_CONNECTION_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"})


class SidecarClient:
    """One client for the sidecar at `grpc_address`, created on first use.

    A client is created only after the sidecar's health endpoint answers (an async probe of at
    most `probe_timeout` seconds), because the SDK's constructor blocks the event loop on a
    health check of its own. Until one is, each call raises what `unreachable` makes of why.
    """

    def __init__(
        self,
        grpc_address: str | None,
        http_endpoint: str | None,
        *,
        probe_timeout: float,
        unreachable: Callable[[str], Exception],
    ) -> None:
        self.grpc_address = grpc_address or default_grpc_address()
        self._http_endpoint = (http_endpoint or default_http_endpoint()).rstrip("/")
        self._probe_timeout = probe_timeout
        self._unreachable = unreachable
        self._client: DaprClient | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def health_url(self) -> str:
        return self._http_endpoint + HEALTH_PATH

    async def connect(self, budget: float) -> str | None:
        """Wait up to `budget` seconds for the sidecar and create the client; answer None, or
        why there is none."""
        async with self._lock:
            return await self._connect(budget)

    async def client(self) -> DaprClient:
        """The client, reconnecting if there is none; raises `unreachable` if that fails."""
        async with self._lock:
            if self._client is not None:
                return self._client
            error = await self._connect(self._probe_timeout)
            if self._client is None:
                raise self._unreachable(
                    f"Dapr sidecar not reachable at {self.health_url} ({error})"
                )
            log.info("Dapr sidecar answered at %s; connected", self.health_url)
            return self._client

    async def forget(self, client: DaprClient, exc: BaseException) -> None:
        """Drop `client` if `exc` says its channel is lost: the next call reconnects."""
        if not _connection_lost(exc):
            return
        async with self._lock:
            if self._client is client:
                self._client = None
        await _close(client)

    async def aclose(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await _close(client)

    async def _connect(self, budget: float) -> str | None:
        error = await self._wait_healthy(budget)
        if error is not None:
            return error
        try:
            with sdk_health_check(self._http_endpoint, self._probe_timeout):
                self._client = DaprClient(address=self.grpc_address)
        except Exception as exc:
            return describe_error(exc)
        return None

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


def describe_error(exc: BaseException) -> str:
    """An SDK or transport error in one line: the gRPC code and details where there are some."""
    if isinstance(exc, DaprGrpcError):
        code = exc.code()  # type: ignore[no-untyped-call]
        details = exc.details()  # type: ignore[no-untyped-call]
        return f"gRPC {getattr(code, 'name', code)}: {details}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, DaprGrpcError):
        code = exc.code()  # type: ignore[no-untyped-call]
        return getattr(code, "name", str(code)) in _CONNECTION_CODES
    return False


async def _close(client: DaprClient) -> None:
    try:
        await client.close()  # type: ignore[no-untyped-call]
    except Exception as exc:
        log.debug("closing the Dapr client failed: %s", exc)
