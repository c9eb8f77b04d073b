"""The SDK checks a 2026-07-28 call's `Mcp-Param-*` headers against the schemas the server hands
it once (mcp_server.param_headers), not by listing every tool per call: an argument a tool marks
`x-mcp-header` must still match its header, and Dueflow's own tools, which mark none, are served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from pydantic import Field
from starlette.types import ASGIApp, Receive, Scope, Send

from dueflow.bootstrap import Runtime
from mcp_server.http_app import Reachable, http_app
from mcp_server.param_headers import serve_param_header_schemas
from mcp_server.server import TokenUsers, build_server
from tests.support.servers import ALICE_TOKEN, bearer, serving

HEADER = b"mcp-param-region"


class Tampering:
    """A proxy that, while `on`, rewrites the Region header a client sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.on = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on and scope["type"] == "http":
            headers = [(k, b"us" if k == HEADER else v) for k, v in scope["headers"]]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


@pytest.fixture
def server(runtime: Runtime) -> FastMCP:
    mcp = build_server(runtime.service, None, TokenUsers({ALICE_TOKEN: "alice"}))

    @mcp.tool
    def route(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
        """Answers the region it was sent."""
        return region

    return mcp


@pytest.fixture
async def proxied(server: FastMCP) -> AsyncIterator[tuple[Tampering, str]]:
    await serve_param_header_schemas(server)
    proxy = Tampering(http_app(server, "http", "/mcp", Reachable("127.0.0.1")))
    async with serving(proxy) as base:  # type: ignore[arg-type]
        yield proxy, f"{base}/mcp"


async def test_only_the_tools_that_mark_header_arguments_are_handed_to_the_sdk(
    server: FastMCP,
) -> None:
    schemas = await serve_param_header_schemas(server)
    assert list(schemas) == ["route"]
    assert schemas["route"]["properties"]["region"]["x-mcp-header"] == "Region"


async def test_a_header_that_matches_its_argument_is_served_and_one_that_does_not_is_refused(
    proxied: tuple[Tampering, str],
) -> None:
    proxy, url = proxied
    async with Client(StreamableHttpTransport(url, headers=bearer(ALICE_TOKEN))) as alice:
        await alice.list_tools()  # the client learns which arguments travel as headers too
        served = await alice.call_tool("route", {"region": "eu"})
        added = await alice.call_tool("add_task", {"title": "served without a header check"})
        proxy.on = True
        with pytest.raises(Exception, match="Mcp-Param-Region"):
            await alice.call_tool("route", {"region": "eu"})
    assert served.structured_content == {"result": "eu"}
    assert added.structured_content["task"]["title"] == "served without a header check"  # type: ignore[index]
