"""The board page the gateway serves: the user's open tasks, kept live over the realtime socket.

    GET  /board                 the page (plain HTML, CSS and JS from this package; no CDN)
    GET  /board/assets/<name>   its stylesheet and script
    POST /board/session         {"token": "<personal token>"} -> a session cookie (sign-in)
    GET  /board/signin?code=... a one-time sign-in link (`dueflow board`) -> a session cookie
    POST /board/signout         ends the session
    GET  /board/tasks           the open tasks, the feed position they were read at, and today

The session cookie is HttpOnly, SameSite=Strict and Secure when the page is served over https;
the token it was made from is never stored in the browser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from importlib import resources
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from domain.adapters.unit_of_work import SqlUnitOfWork
from domain.due import iso_utc
from domain.ports import Clock
from domain.queries import TaskQueries
from domain.query import TaskFilter
from workers.gateway import COOKIE, FOREIGN_ORIGIN, NO_CALLER, Gateway, refusal
from workers.grants import SESSION, SIGNIN
from workers.realtime import task_summary

MAX_TASKS = 1000  # open tasks the board shows; the rest are counted
_PAGE = 200
_ASSETS = {
    "board.css": "text/css; charset=utf-8",
    "board.js": "text/javascript; charset=utf-8",
}
_SECURITY = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:;"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
BAD_TOKEN = (
    "that token is not accepted (unknown, revoked or expired): paste a personal token from"
    " `dueflow tokens create --user <you>`"
)


@dataclass(frozen=True)
class Board:
    """The board's routes over a gateway, reading tasks from `sessions` in `user_zone`."""

    gateway: Gateway
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    user_zone: ZoneInfo

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/board", self._page, methods=["GET"]),
            Route("/board/assets/{name}", self._asset, methods=["GET"]),
            Route("/board/session", self._sign_in, methods=["POST"]),
            Route("/board/signin", self._link, methods=["GET"]),
            Route("/board/signout", self._sign_out, methods=["POST"]),
            Route("/board/tasks", self._tasks, methods=["GET"]),
        ]

    async def _page(self, request: Request) -> Response:
        return Response(_asset_text("board.html"), media_type="text/html", headers=_SECURITY)

    async def _asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _ASSETS:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(_asset_text(name), media_type=_ASSETS[name], headers=_SECURITY)

    async def _sign_in(self, request: Request) -> Response:
        if not self.gateway.origin_allowed(request.headers):
            return refusal(403, "forbidden_origin", FOREIGN_ORIGIN)
        try:
            body = json.loads(await request.body())
            token = body["token"] if isinstance(body, dict) else None
        except (UnicodeDecodeError, ValueError, KeyError):
            token = None
        if not isinstance(token, str) or not token.strip() or len(token) > 4096:
            return refusal(400, "invalid_request", 'send {"token": "<personal token>"}')
        identity = await self.gateway.identify(token.strip())
        if identity is None:
            return refusal(401, "invalid_token", BAD_TOKEN)
        session = await self.gateway.grants.issue(SESSION, identity)
        response = JSONResponse({"user": identity.user_id}, headers={"Cache-Control": "no-store"})
        self._set_cookie(request, response, session)
        return response

    async def _link(self, request: Request) -> Response:
        identity = await self.gateway.grants.redeem(
            SIGNIN, request.query_params.get("code", ""), once=True
        )
        if identity is None:
            return Response(
                "This sign-in link is unknown, used or expired. Run `dueflow board --user <you>`"
                " for a new one, or sign in with a personal token on /board.",
                status_code=401,
                media_type="text/plain",
                headers={"Cache-Control": "no-store"},
            )
        session = await self.gateway.grants.issue(SESSION, identity)
        response = RedirectResponse("/board", status_code=303)
        self._set_cookie(request, response, session)
        return response

    async def _sign_out(self, request: Request) -> Response:
        if not self.gateway.origin_allowed(request.headers):
            return refusal(403, "forbidden_origin", FOREIGN_ORIGIN)
        cookie = request.cookies.get(COOKIE)
        if cookie:
            await self.gateway.grants.end(SESSION, cookie)
        response = Response(status_code=204, headers={"Cache-Control": "no-store"})
        response.delete_cookie(COOKIE, path="/", samesite="strict")
        return response

    async def _tasks(self, request: Request) -> Response:
        identity = await self.gateway.caller(request)
        if identity is None:
            return refusal(401, "invalid_token", NO_CALLER)
        # the position first: a change after it is replayed, and one already in the tasks read
        # is recognised by its version
        position = await self.gateway.feed.head(identity.user_id)
        queries = TaskQueries(partial(SqlUnitOfWork, self.sessions), self.clock, self.user_zone)
        outlook = queries.outlook()
        tasks: list[dict[str, object]] = []
        cursor: str | None = None
        more = True
        while more and len(tasks) < MAX_TASKS:
            page = await queries.list_tasks(identity.user_id, TaskFilter(), _PAGE, cursor)
            tasks.extend(task_summary(task, outlook) for task in page.tasks)
            cursor = page.next_cursor
            more = cursor is not None
        return JSONResponse(
            {
                "user": identity.user_id,
                "today": outlook.today.isoformat(),
                "now": iso_utc(outlook.now),  # the page reckons time passing on this clock
                "timezone": str(self.user_zone),
                "position": position,
                "tasks": tasks[:MAX_TASKS],
                "truncated": more,
            },
            headers={"Cache-Control": "no-store"},
        )

    def _set_cookie(self, request: Request, response: Response, session: str) -> None:
        response.set_cookie(
            COOKIE,
            session,
            max_age=int(self.gateway.grants.lifetimes.session.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def _asset_text(name: str) -> str:
    return resources.files("workers").joinpath("board_assets", name).read_text(encoding="utf-8")
