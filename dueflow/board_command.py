"""`dueflow board`: print a one-time sign-in link to the live board for a user."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from domain.clock import SystemClock
from dueflow.bootstrap import open_database
from dueflow.gateway import grants_for
from dueflow.settings import Settings, SettingsError
from workers.grants import SIGNIN, Identity


def add_board_command(commands: Any) -> None:
    board = commands.add_parser(
        "board",
        help="print a one-time sign-in link to the live board (/board) for a user",
    )
    board.add_argument("--user", required=True, help="the user the board shows")
    board.add_argument(
        "--url",
        default="http://127.0.0.1:8000",
        help="where the board is served: `dueflow serve --transport http` or the realtime"
        " worker (default http://127.0.0.1:8000)",
    )


async def run_board(settings: Settings, args: argparse.Namespace) -> int:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"--url {args.url!r} is not an address. Fix: give the board's base URL, e.g."
            " http://127.0.0.1:8000"
        )
    user = args.user.strip()
    if not user or len(user) > 200 or not user.isprintable():
        raise SettingsError("--user must be 1 to 200 printable characters")
    async with open_database(settings) as database:
        grants = grants_for(settings, database.engine, SystemClock())
        code = await grants.issue(SIGNIN, Identity(user))
        minutes = int(grants.lifetimes.signin.total_seconds() // 60)
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    print(f"{base}/board/signin?code={code}")  # noqa: T201
    print(f"(one use, within {minutes} minutes)", file=sys.stderr)  # noqa: T201
    return 0
