"""The SDK's async DaprClient, created on first use and dropped when its channel is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError

from domain.adapters.dapr_publisher import (
    default_grpc_address,
    default_http_endpoint,
    describe_error,
    sdk_health_check,
)


class SidecarClient:
    """One lazily created client shared by the calls of an adapter (jobs, state)."""

    def __init__(
        self,
        grpc_address: str | None,
        http_endpoint: str | None,
        timeout: float,
        unreachable: Callable[[str], Exception],
    ) -> None:
        self.grpc_address = grpc_address or default_grpc_address()
        self._http_endpoint = (http_endpoint or default_http_endpoint()).rstrip("/")
        self._timeout = timeout
        self._unreachable = unreachable
        self._client: DaprClient | None = None
        self._lock = asyncio.Lock()

    async def connected(self) -> DaprClient:
        """The client; raises what `unreachable` makes of the cause if it cannot be created."""
        async with self._lock:
            if self._client is None:
                try:
                    # the SDK's constructor probes health synchronously and prints to stdout
                    with sdk_health_check(self._http_endpoint, self._timeout):
                        self._client = DaprClient(address=self.grpc_address)
                except Exception as exc:
                    raise self._unreachable(
                        f"Dapr sidecar not reachable at {self.grpc_address}: {describe_error(exc)}"
                    ) from exc
            return self._client

    async def forget(self, client: DaprClient, exc: BaseException) -> None:
        """Drop `client` if `exc` says its channel is gone: the next call reconnects."""
        if isinstance(exc, DaprGrpcError) and describe_error(exc).startswith("gRPC UNAVAILABLE"):
            async with self._lock:
                if self._client is client:
                    self._client = None
            await client.close()  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]
