"""What `dueflow chat` is configured by: the provider's key, base URL and model, the token for a
server it reaches by URL, and the user's zone, read from an environment the caller passes in."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass

OPENROUTER = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "openai/gpt-4.1-mini"
# the provider's key is the only secret the chat holds; the server it spawns never sees it
KEY_VARIABLES = ("DUEFLOW_CHAT_API_KEY", "OPENROUTER_API_KEY")


class ChatSetupError(Exception):
    """The chat cannot start as configured; the message says what to set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatSettings:
    """The chat's settings (see the README's configuration table)."""

    api_key: str
    base_url: str = OPENROUTER
    model: str = DEFAULT_MODEL
    token: str | None = None
    timezone: str = "UTC"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChatSettings:
        source = os.environ if env is None else env
        key = next((source[name].strip() for name in KEY_VARIABLES if source.get(name)), "")
        if not key:
            raise ChatSetupError(
                "no API key: OPENROUTER_API_KEY is not set. Fix: create a key at"
                " https://openrouter.ai/keys and `export OPENROUTER_API_KEY=...`; for another"
                " OpenAI-compatible provider set DUEFLOW_CHAT_API_KEY and DUEFLOW_CHAT_BASE_URL."
            )
        base_url = source.get("DUEFLOW_CHAT_BASE_URL", "").strip() or OPENROUTER
        if not base_url.startswith(("http://", "https://")):
            raise ChatSetupError(
                "DUEFLOW_CHAT_BASE_URL: is not an http(s) URL. Fix: give the endpoint's base,"
                f" e.g. {OPENROUTER}"
            )
        timezone = source.get("DUEFLOW_TIMEZONE", "").strip() or "UTC"
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ChatSetupError(
                f"DUEFLOW_TIMEZONE: {timezone[:60]!r} is not an IANA time zone. Fix: use a name"
                " like Europe/Berlin or America/New_York."
            ) from None
        return cls(
            api_key=key,
            base_url=base_url.rstrip("/"),
            model=source.get("DUEFLOW_CHAT_MODEL", "").strip() or DEFAULT_MODEL,
            token=source.get("DUEFLOW_CHAT_TOKEN", "").strip() or None,
            timezone=timezone,
        )
