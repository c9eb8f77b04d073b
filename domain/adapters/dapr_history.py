"""The history read from the audit app by Dapr service invocation (the MCP server in Dapr mode).

It POSTs the query to the audit app's `history` method with the shared internal token (see
workers/audit_api.py) and turns every failure into a message that says what to fix: a refused
argument comes back as the same ValidationFailed the database reader raises; an unreachable app,
a refused token or a broken answer become HistoryUnavailable.
"""

from __future__ import annotations

import httpx

from domain.adapters.dapr_invocation import ServiceInvocation, response_error, response_json
from domain.adapters.internal_api import HISTORY_METHOD, TOKEN_HEADER
from domain.due import iso_utc
from domain.errors import ValidationFailed
from domain.history import HistoryEntry, HistoryPage, HistoryQuery, HistoryUnavailable


class DaprHistory:
    """A HistoryReader that asks the audit app `app_id` through the sidecar."""

    def __init__(
        self,
        app_id: str,
        token: str,
        http_endpoint: str | None = None,
        *,
        timeout: float = 10.0,
        api_token: str | None = None,
    ) -> None:
        self.app_id = app_id
        self._calls = ServiceInvocation(
            app_id,
            {TOKEN_HEADER: token},
            http_endpoint,
            timeout=timeout,
            api_token=api_token,
        )

    async def history(self, query: HistoryQuery) -> HistoryPage:
        body = {
            "user_id": query.user_id,
            "task_id": query.task_id,
            "since": iso_utc(query.since) if query.since else None,
            "until": iso_utc(query.until) if query.until else None,
            "limit": query.limit,
            "cursor": query.cursor,
        }
        try:
            response = await self._calls.post(HISTORY_METHOD, body)
        except httpx.HTTPError as exc:
            detail = f"the Dapr sidecar did not answer ({type(exc).__name__})"
            raise self._unavailable(detail) from exc
        data = response_json(response)
        if response.status_code == 400 and {"field", "problem", "fix"} <= set(data):
            raise ValidationFailed(str(data["field"]), str(data["problem"]), str(data["fix"]))
        if response.status_code in (401, 403):
            raise HistoryUnavailable(
                f"The audit app ({self.app_id}) refused this server's internal token. Fix: set"
                " the same DUEFLOW_INTERNAL_TOKEN on the API app and the audit app."
            )
        if response.status_code == 404:
            raise HistoryUnavailable(
                f"The audit app ({self.app_id}) does not serve its history. Fix: set"
                " DUEFLOW_INTERNAL_TOKEN on the audit app too (the same as on the API app)."
            )
        if not response.is_success:
            detail = f"HTTP {response.status_code}: {response_error(response)}"
            raise self._unavailable(detail)
        try:
            entries = [HistoryEntry.from_json(item) for item in data["entries"]]
            next_cursor = data.get("next_cursor")
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unavailable(f"its answer is not a history page ({exc})") from None
        return HistoryPage(entries, None if next_cursor is None else str(next_cursor))

    def _unavailable(self, detail: str) -> HistoryUnavailable:
        return HistoryUnavailable(
            f"The history is unavailable: the audit app ({self.app_id}) could not be reached by"
            f" Dapr service invocation: {detail}. Fix: check that `dueflow worker audit` runs"
            f" with its sidecar as app id {self.app_id!r} (DUEFLOW_AUDIT_APP_ID) and try again."
        )

    async def aclose(self) -> None:
        await self._calls.aclose()
