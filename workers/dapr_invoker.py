"""DaprInvoker: the recurrence worker's next occurrences through the task API, by Dapr service
invocation. Only `dueflow worker recurrence` with an internal token uses it (it loads httpx and
the Dapr SDK's settings), so it lives apart from the worker's consumer."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from domain.adapters.dapr_invocation import ServiceInvocation, response_error, response_json
from domain.adapters.internal_api import RECUR_METHOD, TOKEN_HEADER
from workers.recurrence import InvocationRejected

log = logging.getLogger("dueflow.recurrence")

# statuses that say "not now" rather than "never": the delivery is retried
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


class InvocationFailed(Exception):
    """The API could not be reached or failed (connection error, timeout, 5xx): retry later."""


class DaprInvoker:
    """Creates the next occurrence through the API app by Dapr service invocation (the sidecar's
    HTTP invoke API, see domain.adapters.dapr_invocation), with the shared token in a header."""

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
            app_id, {TOKEN_HEADER: token}, http_endpoint, timeout=timeout, api_token=api_token
        )
        self.url = self._calls.url(RECUR_METHOD)

    async def __call__(self, user_id: str, task_id: str, causation_id: str) -> None:
        body = {"user_id": user_id, "task_id": task_id, "causation_id": causation_id}
        try:
            response = await self._calls.post(RECUR_METHOD, body)
        except httpx.HTTPError as exc:
            raise InvocationFailed(
                f"invoking {self.app_id} {RECUR_METHOD} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if response.is_success:
            next_id: Any = response_json(response).get("next_task_id")
            log.info("task %s of %s: next occurrence %s", task_id, user_id, next_id or "none")
            return
        status = response.status_code
        detail = f"{self.app_id} {RECUR_METHOD} answered HTTP {status}: {response_error(response)}"
        if status >= 500 or status in _TRANSIENT_STATUSES:
            raise InvocationFailed(detail)
        raise InvocationRejected(detail)

    async def aclose(self) -> None:
        await self._calls.aclose()
