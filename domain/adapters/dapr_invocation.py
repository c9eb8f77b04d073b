"""Dapr service invocation over the sidecar's HTTP API: POST /v1.0/invoke/<app>/method/<method>.

The SDK's DaprClient uses this API by default too (its gRPC invoke_method is deprecated); calling
it with httpx avoids the SDK client's blocking start-up health check, and the callee's HTTP status
and body come back as they are. Headers given here (e.g. the internal token) go with every call;
daprd forwards them to the callee. DAPR_API_TOKEN, if set, authenticates us to the sidecar.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from dapr.conf import settings as dapr_settings


class ServiceInvocation:
    """Calls the methods of Dapr app `app_id` through the local sidecar."""

    def __init__(
        self,
        app_id: str,
        headers: Mapping[str, str],
        http_endpoint: str | None = None,
        *,
        timeout: float = 10.0,
        api_token: str | None = None,
    ) -> None:
        self.app_id = app_id
        self.endpoint = (http_endpoint or default_http_endpoint()).rstrip("/")
        self._headers = {**headers, "content-type": "application/json"}
        sidecar_token = api_token if api_token is not None else dapr_settings.DAPR_API_TOKEN
        if sidecar_token:
            self._headers["dapr-api-token"] = str(sidecar_token)
        self._http = httpx.AsyncClient(timeout=timeout)

    def url(self, method: str) -> str:
        return f"{self.endpoint}/v1.0/invoke/{self.app_id}/method/{method}"

    async def post(self, method: str, body: Any) -> httpx.Response:
        """POST `body` as JSON to `method`; httpx.HTTPError when the sidecar cannot be reached."""
        return await self._http.post(
            self.url(method), content=json.dumps(body), headers=self._headers
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def default_http_endpoint() -> str:
    """Where the SDK would look: DAPR_HTTP_ENDPOINT, else http://DAPR_RUNTIME_HOST:DAPR_HTTP_PORT."""
    endpoint = dapr_settings.DAPR_HTTP_ENDPOINT
    if endpoint:
        return str(endpoint)
    return f"http://{dapr_settings.DAPR_RUNTIME_HOST}:{dapr_settings.DAPR_HTTP_PORT}"


def response_json(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when it has none."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def response_error(response: httpx.Response) -> str:
    """The error a failed call answered, short enough for a log line or a message."""
    data = response_json(response)
    message = data.get("error") or data.get("message") or response.text
    return str(message)[:300]
