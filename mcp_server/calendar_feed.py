"""GET /calendar/<secret>.ics: a user's open tasks for calendar apps to subscribe to.

Calendar apps cannot send a bearer token, so the unguessable secret in the path is the
credential: an unknown, revoked or orphaned secret answers 404 (the same answer as a path that
never existed) and is logged without the secret. Answers carry an ETag and Last-Modified, and a
conditional GET that still matches answers 304 with no body.
"""

from __future__ import annotations

import email.utils
import logging
import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.adapters.calendar_files import CalendarFiles

log = logging.getLogger(__name__)

ROUTE = "/calendar/{secret}.ics"
MASKED = "/calendar/…"  # what logs show of a feed's path
_SECRET = re.compile(r"/calendar/[^/?\s\"]+")
_HEADERS = {"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"}


def feed_route(calendar: CalendarFiles) -> Route:
    """The feed route, answering from `calendar`."""

    async def feed(request: Request) -> Response:
        version = await calendar.feed(str(request.path_params.get("secret", ""))[:200])
        if version is None:
            log.info(
                "refused %s %s with 404 (unknown or revoked calendar feed; Host %r)",
                request.method,
                MASKED,
                request.headers.get("host", "")[:100],
            )
            return Response("no such calendar\n", status_code=404, media_type="text/plain")
        modified = email.utils.format_datetime(version.last_modified, usegmt=True)
        headers = {**_HEADERS, "ETag": version.etag, "Last-Modified": modified}
        if _unchanged(request, version.etag, version.last_modified.timestamp()):
            return Response(status_code=304, headers=headers)
        text = await calendar.feed_text(version)
        return Response(text, media_type="text/calendar; charset=utf-8", headers=headers)

    return Route(ROUTE, feed, methods=["GET", "HEAD"])


def _unchanged(request: Request, etag: str, modified: float) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match decides when sent; else If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in match.split(",")]
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        parsed = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return parsed.tzinfo is not None and modified <= parsed.timestamp()


class FeedSecretsMasked(logging.Filter):
    """Masks feed paths in the records of a logger that writes request paths (uvicorn's access
    log): a feed's path is its credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET.sub(MASKED, arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SECRET.sub(MASKED, record.msg)
        return True
