"""Process settings, read from DUEFLOW_* variables of an environment the caller passes in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from domain.due import zone
from domain.errors import ValidationFailed

PREFIX = "DUEFLOW_"


class SettingsError(ValueError):
    """Settings that cannot work; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Everything a Dueflow process is configured by (environment variables DUEFLOW_<NAME>)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means an embedded SQLite file in data_dir",
    )
    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("dueflow"),
        description="Where the embedded database lives",
    )
    user: str = Field(default="local", description="The user a stdio session acts as")
    tokens: str = Field(
        default="", description="Bearer tokens for HTTP transports: 'tok1=alice,tok2=bob'"
    )
    timezone: str = Field(default="UTC", description="The user's IANA time zone")
    event_bus: Literal["embedded", "dapr"] = Field(
        default="embedded", description="embedded: in-process consumers; dapr: publish via sidecar"
    )
    relay_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often the relay looks for rows it was not woken for (other processes,"
        " retries); a commit in this process wakes it at once",
    )
    relay_patience_seconds: float = Field(
        default=0.5,
        ge=0,
        description="How long the relay of a serving process gives way to a stream of requests"
        " before it publishes anyway (it publishes in the first 10 ms pause); 0: never waits",
    )
    dapr_pubsub: str = Field(default="pubsub", description="Dapr pub/sub component name")
    dapr_grpc_address: str | None = Field(
        default=None, description="Sidecar gRPC address host:port; default from DAPR_GRPC_PORT"
    )
    dapr_http_endpoint: str | None = Field(
        default=None, description="Sidecar HTTP endpoint for health; default from DAPR_HTTP_PORT"
    )
    dapr_health_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the sidecar at start-up"
    )
    internal_token: str | None = Field(
        default=None,
        description="Shared token of the API app's internal routes (Dapr service invocation by"
        " the workers); unset: the routes are not served and workers call the use case directly",
    )
    api_app_id: str = Field(
        default="dueflow-api", description="The Dapr app id of the API app the workers invoke"
    )
    log_level: str = Field(default="INFO")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what from_env() hands over counts: tests pass a dict instead of patching os.environ.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        values: dict[str, Any] = {
            key[len(PREFIX) :].lower(): value
            for key, value in source.items()
            if key.startswith(PREFIX) and key[len(PREFIX) :].lower() in cls.model_fields
        }
        return cls(**values)

    @field_validator("timezone")
    @classmethod
    def _real_zone(cls, value: str) -> str:
        try:
            zone(value, "DUEFLOW_TIMEZONE")
        except ValidationFailed as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("user")
    @classmethod
    def _user_named(cls, value: str) -> str:
        if not value.strip() or len(value) > 200:
            raise ValueError("DUEFLOW_USER must be 1 to 200 characters")
        return value.strip()

    @field_validator("internal_token")
    @classmethod
    def _long_token(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if len(value.strip()) < 16:
            raise ValueError(
                "DUEFLOW_INTERNAL_TOKEN is shorter than 16 characters; use a long random token"
                " (e.g. `openssl rand -hex 24`)"
            )
        return value.strip()

    @field_validator("api_app_id")
    @classmethod
    def _app_id_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("DUEFLOW_API_APP_ID must not be empty")
        return value.strip()

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'dueflow.db'}"

    def token_users(self) -> dict[str, str]:
        """The token -> user map of DUEFLOW_TOKENS."""
        users: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in self.tokens.split(","))):
            token, sep, user = entry.partition("=")
            if not sep or not token.strip() or not user.strip():
                raise SettingsError(
                    "DUEFLOW_TOKENS: each entry must be token=user, e.g. 'tok1=alice,tok2=bob'"
                )
            if len(token.strip()) < 16:
                raise SettingsError(
                    f"DUEFLOW_TOKENS: the token for {user.strip()!r} is shorter than 16"
                    " characters; use a long random token (e.g. `openssl rand -hex 24`)"
                )
            users[token.strip()] = user.strip()
        return users
