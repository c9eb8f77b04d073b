"""The model's side of the chat: one chat-completions request per step through the official
`openai` SDK (any OpenAI-compatible endpoint), streamed or not, with rate limits and the
provider's passing failures retried under a backoff the person is told about."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessage

from domain.backoff import Backoff
from dueflow.chat.settings import ChatSettings

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_BACKOFF = Backoff(base=1.0, cap=16.0, attempts=4, jitter=0.5)
LONGEST_RETRY_AFTER = 60.0
REQUEST_SECONDS = 120.0


class ProviderError(Exception):
    """A request to the model failed; the message says why and what to do. `fatal` when the
    session cannot go on as configured (the key or the model is wrong)."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; `arguments` is its JSON text, unchecked."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Reply:
    """What the model answered in one step: text, tool calls, or both."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


class Provider:
    """Chat completions of `settings.model` at `settings.base_url`."""

    def __init__(
        self,
        settings: ChatSettings,
        *,
        stream: bool,
        notice: Callable[[str], None],
        backoff: Backoff = RETRY_BACKOFF,
    ) -> None:
        self._settings = settings
        self._stream = stream
        self._notice = notice
        self._backoff = backoff
        # retries are ours, so the person hears of each one
        self._client = AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.base_url,
            max_retries=0,
            timeout=REQUEST_SECONDS,
            default_headers={"X-Title": "Dueflow chat"},
        )

    async def close(self) -> None:
        await self._client.close()

    async def reply(
        self,
        messages: Sequence[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_text: Callable[[str], None],
    ) -> Reply:
        """The model's next step after `messages`; streamed text goes to `on_text` as it comes."""
        attempt = 1
        while True:
            try:
                return await self._request(messages, tools, on_text)
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRIED_STATUSES:
                    raise self._refusal(exc) from None
                if not self._backoff.tries_again(attempt):
                    raise self._gave_up(exc, attempt) from None
                wait = _retry_after(exc) or self._backoff.delay(attempt)
                what = "rate limited" if exc.status_code == 429 else f"error {exc.status_code}"
                self._notice(
                    f"{what} by the provider; retrying in {wait:.1f} s"
                    f" (try {attempt + 1} of {self._backoff.attempts})"
                )
                await asyncio.sleep(wait)
                attempt += 1
            except openai.APIConnectionError as exc:
                raise ProviderError(
                    f"cannot reach the model provider at {self._settings.base_url}"
                    f" ({type(exc).__name__}: {exc}). Fix: check the network and"
                    " DUEFLOW_CHAT_BASE_URL, then ask again."
                ) from None
            except openai.APIError as exc:
                raise ProviderError(f"the provider failed: {_message(exc)}. Ask again.") from None

    async def _request(
        self,
        messages: Sequence[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_text: Callable[[str], None],
    ) -> Reply:
        request: dict[str, Any] = {"model": self._settings.model, "messages": list(messages)}
        if tools:
            request["tools"] = tools
        if not self._stream:
            completion = await self._client.chat.completions.create(**request)
            message = completion.choices[0].message if completion.choices else None
            reply = _reply(message)
            if reply.text:
                on_text(reply.text)
            return reply
        async with self._client.chat.completions.stream(**request) as stream:
            async for event in stream:
                if event.type == "content.delta":
                    on_text(event.delta)
            final = await stream.get_final_completion()
        return _reply(final.choices[0].message if final.choices else None)

    def _refusal(self, exc: openai.APIStatusError) -> ProviderError:
        status, message = exc.status_code, _message(exc)
        where = self._settings.base_url
        if status == 401:
            return ProviderError(
                f"the provider at {where} refused the API key (401: {message}). Fix: check"
                " OPENROUTER_API_KEY (or DUEFLOW_CHAT_API_KEY) is a current key for this"
                " provider.",
                fatal=True,
            )
        if status in (400, 404) and "tool" in message.lower():
            return ProviderError(
                f"the model {self._settings.model!r} does not support tool calls ({status}:"
                f" {message}). Fix: choose a model that does, e.g. DUEFLOW_CHAT_MODEL="
                "openai/gpt-4.1-mini (OpenRouter lists them under 'tools' support).",
                fatal=True,
            )
        if status == 404:
            return ProviderError(
                f"the provider at {where} has no model {self._settings.model!r} (404:"
                f" {message}). Fix: set DUEFLOW_CHAT_MODEL (or --model) to one it serves.",
                fatal=True,
            )
        if status == 402:
            return ProviderError(
                f"the provider refused the request for payment (402: {message}). Fix: add"
                " credit to the account or choose a free model.",
                fatal=True,
            )
        return ProviderError(f"the provider refused the request ({status}: {message}).")

    def _gave_up(self, exc: openai.APIStatusError, attempts: int) -> ProviderError:
        what = "rate limited" if exc.status_code == 429 else f"failing ({exc.status_code})"
        return ProviderError(
            f"the provider is {what}: gave up after {attempts} tries ({_message(exc)}). Fix:"
            " wait a minute and ask again, or choose another model (DUEFLOW_CHAT_MODEL)."
        )


def _reply(message: ChatCompletionMessage | None) -> Reply:
    if message is None:
        return Reply()
    calls = [
        ToolCall(call.id, call.function.name, call.function.arguments or "{}")
        for call in message.tool_calls or []
        if call.type == "function"
    ]
    return Reply(message.content or "", calls)


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """The wait the provider asked for (retry-after-ms, or retry-after in seconds), bounded."""
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = exc.response.headers.get(header)
        try:
            seconds = float(value) / divisor if value is not None else math.nan
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, LONGEST_RETRY_AFTER)
    return None


def _message(exc: openai.APIError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return " ".join(inner["message"].split())[:300]
        if isinstance(body.get("message"), str):
            return " ".join(body["message"].split())[:300]
    return " ".join(str(exc.message).split())[:300]
