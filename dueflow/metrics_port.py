"""The side port (DUEFLOW_METRICS_PORT) that serves /metrics for a process without an HTTP
transport of its own (`dueflow serve` over stdio, `dueflow relay`). Imported only when set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Generator

import uvicorn
from starlette.applications import Starlette

from domain.adapters.metrics import PATH, Scrape
from dueflow.settings import SettingsError

log = logging.getLogger("dueflow.metrics")


class _SidePort(uvicorn.Server):
    """uvicorn's server without its signal handlers: the process's own handling stays."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def metrics_served(scrape: Scrape, host: str, port: int) -> AsyncIterator[None]:
    """GET /metrics on host:port for the block's duration, served in this event loop."""
    app = Starlette(routes=[scrape.route()])
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = _SidePort(config)
    serving = asyncio.create_task(server.serve(), name="metrics-port")
    while not (server.started or serving.done()):
        await asyncio.sleep(0.01)
    if not server.started:
        with contextlib.suppress(BaseException):
            await serving
        raise SettingsError(
            f"DUEFLOW_METRICS_PORT: cannot serve /metrics on {host}:{port} (in use, or not an"
            " address of this machine). Fix: choose a free port, or unset it."
        )
    log.info("metrics at http://%s:%d%s", host, port, PATH)
    try:
        yield
    finally:
        server.should_exit = True
        await serving
