"""The API app's probes for an orchestrator: `GET /healthz` (the process answers) and
`GET /readyz` (the database answers too), served next to /mcp outside MCP's bearer auth."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from fastmcp import FastMCP
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("dueflow.health")

READY_TIMEOUT_SECONDS = 2.0  # under the chart's probe timeout (3 s): the answer comes first


def mount_health(server: FastMCP, engine: AsyncEngine) -> None:
    """Serve /healthz and /readyz on the server's HTTP app."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except Exception as exc:
            log.warning("not ready: the database does not answer: %s", exc)
            return JSONResponse({"status": "database unreachable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    server.custom_route("/healthz", methods=["GET"], include_in_schema=False)(healthz)
    server.custom_route("/readyz", methods=["GET"], include_in_schema=False)(readyz)
