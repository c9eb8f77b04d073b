"""The internal API's contract: the routes one Dueflow app serves another by Dapr service
invocation, the header that carries the shared token, and the check every such route makes.

The routes sit outside MCP and its bearer-token auth, so each request must carry the shared
DUEFLOW_INTERNAL_TOKEN in TOKEN_HEADER (daprd forwards the caller's headers to the callee); a
request without it answers 401, one with a wrong token 403. Without a configured token the
routes are not served at all. Both sides import this module: the API app (mcp_server) and the
workers, which serve or call these routes.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

TOKEN_HEADER = "x-dueflow-internal-token"
MIN_TOKEN_LENGTH = 16

# the API app: create the next occurrence of a completed recurring task
RECUR_METHOD = "internal/recurrence/next"  # the Dapr method name: the path without its slash
RECUR_PATH = f"/{RECUR_METHOD}"
# the audit app: one user's history
HISTORY_METHOD = "history"
HISTORY_PATH = f"/{HISTORY_METHOD}"

Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint, token: str) -> Endpoint:
    """`endpoint`, answered only for requests that present `token` in TOKEN_HEADER."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the internal token must be at least {MIN_TOKEN_LENGTH} characters")
    expected = token.encode()

    async def checked(request: Request) -> Response:
        presented = request.headers.get(TOKEN_HEADER)
        if presented is None:
            return error(401, f"missing {TOKEN_HEADER} header")
        if not hmac.compare_digest(presented.encode(), expected):
            return error(403, f"wrong {TOKEN_HEADER}")
        return await endpoint(request)

    return checked


def error(status: int, message: str) -> Response:
    """An internal route's refusal: {"error": message} with `status`."""
    return JSONResponse({"error": message}, status_code=status)
