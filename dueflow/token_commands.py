"""`dueflow tokens`: create, list and revoke personal access tokens, and read the access log."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from domain.access import SCOPES, AccessEvent, PersonalToken, PersonalTokens
from domain.adapters.access_sql import SqlTokenStore
from domain.clock import SystemClock
from domain.errors import DueflowError
from dueflow.bootstrap import open_database
from dueflow.settings import Settings


def add_token_commands(commands: Any) -> None:
    """The `tokens` command and its subcommands, on the top-level parser's subparsers."""
    tokens = commands.add_parser(
        "tokens", help="personal access tokens for the HTTP transports, kept in the database"
    )
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    create = token_commands.add_parser(
        "create", help="create a token for a user and print it (once: only its hash is kept)"
    )
    create.add_argument("--user", required=True, help="the user the token acts as")
    create.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        default=[],
        help="tasks:read (list and read) or tasks:write (change); repeat for both (the default)",
    )
    create.add_argument(
        "--expires", default=None, help="lifetime: 12h, 90d, 26w, or never (the default)"
    )
    create.add_argument("--name", default="", help="what the token is for, e.g. laptop")
    listing = token_commands.add_parser("list", help="every token: id, user, scopes, state")
    listing.add_argument("--user", default=None, help="only this user's tokens")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id, at once")
    revoke.add_argument("id", help="the token's id, from `dueflow tokens list`")
    log = token_commands.add_parser("log", help="tokens created, revoked and refused, newest first")
    log.add_argument("--user", default=None, help="only this user's entries")
    log.add_argument("--limit", type=int, default=100, help="how many entries (default 100)")


async def run_tokens(settings: Settings, args: argparse.Namespace) -> int:
    """Run `dueflow tokens <command>`; 0 on success, 1 when the command was refused."""
    clock = SystemClock()
    async with open_database(settings) as database:
        tokens = PersonalTokens(SqlTokenStore(database.engine), clock)
        try:
            if args.tokens_command == "create":
                token, text = await tokens.create(args.user, args.scope, args.expires, args.name)
                print(text)  # noqa: T201 - stdout holds the token alone, for scripts
                print(  # noqa: T201
                    f"created token {token.id} for {token.user_id} ({' '.join(token.scopes)},"
                    f" {_expires(token)}); it is shown only now: keep it in a secret store",
                    file=sys.stderr,
                )
            elif args.tokens_command == "list":
                now = clock.now()
                for token in await tokens.tokens(args.user):
                    print(_row(token, now))  # noqa: T201
            elif args.tokens_command == "revoke":
                token = await tokens.revoke(args.id)
                print(f"revoked {token.id} of {token.user_id}")  # noqa: T201
            else:
                for event in await tokens.access_log(args.user, args.limit):
                    print(_entry(event))  # noqa: T201
        except DueflowError as exc:
            print(exc.message, file=sys.stderr)  # noqa: T201
            return 1
    return 0


def _row(token: PersonalToken, now: dt.datetime) -> str:
    used = _moment(token.last_used_at) if token.last_used_at else "never used"
    return "\t".join(
        [
            token.id,
            token.user_id,
            token.name or "-",
            " ".join(token.scopes),
            token.state(now),
            f"created {_moment(token.created_at)}",
            _expires(token),
            used if token.last_used_at is None else f"last used {used}",
        ]
    )


def _entry(event: AccessEvent) -> str:
    return "\t".join(
        [_moment(event.at), event.action, event.token_id or "-", event.user_id or "-", event.detail]
    )


def _expires(token: PersonalToken) -> str:
    return f"expires {_moment(token.expires_at)}" if token.expires_at else "no expiry"


def _moment(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"
