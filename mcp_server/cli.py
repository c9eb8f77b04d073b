"""The `dueflow` command: serve the MCP tools, manage the database schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Literal

from pydantic import ValidationError

from domain.adapters.schema import current_revision, head_revision, upgrade
from domain.adapters.sql import make_engine
from mcp_server.bootstrap import bootstrap
from mcp_server.server import TokenUsers, build_server
from mcp_server.settings import Settings, SettingsError

log = logging.getLogger("dueflow")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="dueflow",
        description="Dueflow: a task server for AI agents. Configure with DUEFLOW_* variables"
        " (see README).",
    )
    commands = top.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the MCP tools")
    serve.add_argument(
        "--transport",
        choices=("stdio", "http", "sse"),
        default="stdio",
        help="stdio (default); http: streamable HTTP at /mcp; sse: legacy SSE at /sse",
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply every migration to DUEFLOW_DATABASE_URL")
    db_commands.add_parser("current", help="print the schema revision and the code's head")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValidationError as exc:
        print(f"dueflow: bad setting: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            asyncio.run(serve(settings, args.transport, args.host, args.port))
        elif args.db_command == "upgrade":
            asyncio.run(db_upgrade(settings))
        else:
            asyncio.run(db_current(settings))
    except SettingsError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


async def serve(
    settings: Settings, transport: Literal["stdio", "http", "sse"], host: str, port: int
) -> None:
    auth = None
    default_user: str | None = settings.user
    if transport != "stdio":
        users = settings.token_users()
        if not users:
            raise SettingsError(
                "HTTP transports need DUEFLOW_TOKENS (e.g. 'tok1=alice'); refusing to serve"
                " tasks to anyone who can reach the port."
            )
        auth, default_user = TokenUsers(users), None
    runtime = await bootstrap(settings)
    try:
        server = build_server(runtime.service, default_user, auth)
        log.info("serving over %s (database: %s)", transport, runtime.engine.url.render_as_string())
        if transport == "stdio":
            await server.run_async(transport="stdio", show_banner=False)
        else:
            path = "/mcp" if transport == "http" else "/sse"
            await server.run_async(
                transport=transport, host=host, port=port, path=path, show_banner=False
            )
    finally:
        await runtime.close()


async def db_upgrade(settings: Settings) -> None:
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url())
    try:
        await upgrade(engine)
        log.info("schema at %s", await current_revision(engine))
    finally:
        await engine.dispose()


async def db_current(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url())
    try:
        print(f"current: {await current_revision(engine)}  head: {head_revision()}")  # noqa: T201
    finally:
        await engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
