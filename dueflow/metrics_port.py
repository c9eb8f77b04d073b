"""The side port (DUEFLOW_METRICS_PORT) that serves /metrics for a process without an HTTP
transport of its own (`dueflow serve` over stdio, `dueflow relay`). Imported only when set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
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
    try:
        # bound here, not by uvicorn, whose bind failure would exit the process
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise SettingsError(
            f"DUEFLOW_METRICS_PORT: cannot serve /metrics on {host}:{port}: {exc.strerror}."
            " Fix: choose a free port (or another DUEFLOW_METRICS_HOST), or unset it."
        ) from None
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-port")
    while not (server.started or serving.done()):
        await asyncio.sleep(0.01)
    log.info("metrics at http://%s:%d%s", host, port, PATH)
    try:
        yield
    finally:
        server.should_exit = True
        await serving
        sock.close()
