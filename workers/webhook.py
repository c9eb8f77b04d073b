"""The webhook channel: a signed JSON POST per reminder to the user's URL, through the SSRF guard.

Signature: `X-Dueflow-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
`X-Dueflow-Timestamp` (Unix seconds) and `X-Dueflow-Event-Id` (the trigger, for deduplication:
delivery is at least once).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx

from domain.channels import DeliveryFailed, Notification, Sent
from domain.ports import Clock
from workers.address_guard import AddressGuard, Target, TargetRefused

log = logging.getLogger("dueflow.webhook")
SIGNATURE_HEADER = "X-Dueflow-Signature"
TIMESTAMP_HEADER = "X-Dueflow-Timestamp"
EVENT_ID_HEADER = "X-Dueflow-Event-Id"
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})  # the receiver asks us to come back later


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Dueflow-Signature value of `body` sent at `timestamp`."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def body_of(notification: Notification) -> bytes:
    """The JSON body POSTed for a notification (compact, keys sorted)."""
    message = notification.message
    document: dict[str, Any] = {
        "event_id": notification.event_id,
        "user_id": notification.user_id,
        "task": message.get("task"),
        "reminder": message.get("reminder"),
        "text": message.get("text"),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class WebhookChannel:
    """POSTs each notification to the user's URL from DUEFLOW_WEBHOOKS."""

    name = "webhook"

    def __init__(
        self,
        urls: Mapping[str, str],
        secret: str,
        clock: Clock,
        timeout_seconds: float = 5.0,
        guard: AddressGuard | None = None,
    ) -> None:
        self._urls = dict(urls)
        self._secret = secret
        self._clock = clock
        self._timeout = timeout_seconds
        self._guard = guard or AddressGuard()
        # no redirects (a redirect could lead past the guard), no proxies from the environment
        self._client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout_seconds
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, notification: Notification) -> Sent:
        url = self._urls.get(notification.user_id)
        if url is None:
            return Sent(skipped=f"no webhook is configured for {notification.user_id!r}")
        try:
            async with asyncio.timeout(self._timeout):
                target = await self._guard.check(url)
                response = await self._post(target, notification)
        except TargetRefused as exc:
            raise DeliveryFailed(f"refused: {exc}", retry=False) from None
        except TimeoutError:
            raise DeliveryFailed(f"timed out after {self._timeout:g}s", retry=True) from None
        except (httpx.HTTPError, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}", retry=True) from None
        return _judge(response)

    async def _post(self, target: Target, notification: Notification) -> httpx.Response:
        body = body_of(notification)
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "dueflow-webhook/1",
            # the connection goes to the checked address; Host and SNI still name the host
            "Host": target.url.netloc.rpartition("@")[2],
            SIGNATURE_HEADER: signature(self._secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            EVENT_ID_HEADER: notification.event_id,
        }
        address = str(target.address)
        host = f"[{address}]" if ":" in address else address
        path = target.url.path or "/"
        query = f"?{target.url.query}" if target.url.query else ""
        pinned = f"{target.url.scheme}://{host}:{target.port}{path}{query}"
        extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
        return await self._client.post(pinned, content=body, headers=headers, extensions=extensions)


def _judge(response: httpx.Response) -> Sent:
    status = response.status_code
    if 200 <= status < 300:
        return Sent()
    detail = f"HTTP {status}: {response.text[:200]}".rstrip(": ")
    if 300 <= status < 400:
        raise DeliveryFailed(
            f"{detail} (redirects are not followed; configure the final URL)", retry=False
        )
    if 400 <= status < 500 and status not in _RETRYABLE_CLIENT_ERRORS:
        raise DeliveryFailed(detail, retry=False)
    raise DeliveryFailed(detail, retry=True)
