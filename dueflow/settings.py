"""Process settings, read from DUEFLOW_* variables of an environment the caller passes in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from domain.due import zone
from domain.errors import ValidationFailed
from workers.address_guard import literal_address, refusal
from workers.notifications import NotificationConfig

# the JWT signing algorithms OAuth mode may accept: public-key ones only (no shared secret, no
# `none`)
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

PREFIX = "DUEFLOW_"
MAX_RETENTION = 36500  # a hundred years; beyond that, leave retention unset


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
        default=0.1,
        ge=0,
        description="How long the relay of a serving process gives way to a stream of requests"
        " before it publishes anyway (it publishes in the first 10 ms pause); 0: never waits",
    )
    dapr_pubsub: str = Field(default="pubsub", description="Dapr pub/sub component name")
    dapr_statestore: str = Field(
        default="statestore",
        description="Dapr state store component of the reminder schedule (dapr); the API app and"
        " `dueflow worker reminders` must name the same one",
    )
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
    audit_app_id: str = Field(
        default="dueflow-audit",
        description="The Dapr app id of the audit app the MCP server reads history from (dapr)",
    )
    audit_retention_days: int | None = Field(
        default=None,
        description="Delete audit entries older than this many days; unset keeps them forever",
    )
    webhooks: str = Field(
        default="",
        description="Per-user webhook URLs for reminders: 'alice=https://hooks.example/a,bob=...'",
    )
    webhook_secret: str | None = Field(
        default=None, description="HMAC-SHA256 key of X-Dueflow-Signature (16+ characters)"
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one webhook POST may take"
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks reach loopback, private and link-local addresses",
    )
    notification_max_attempts: int = Field(
        default=6, ge=1, le=50, description="Tries per delivery before it is dead"
    )
    notification_retry_seconds: float = Field(
        default=10.0, gt=0, description="First retry delay; it doubles per attempt (with jitter)"
    )
    notification_poll_seconds: float = Field(
        default=5.0, gt=0, description="How often the dispatcher looks for due retries"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve GET /metrics on this port too (beside the HTTP transports' own"
        " /metrics): the way to scrape `dueflow serve` over stdio and `dueflow relay`",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="The address DUEFLOW_METRICS_PORT binds"
    )
    log_level: str = Field(default="INFO")
    otlp_endpoint: str | None = Field(
        default=None,
        description="Export traces over OTLP/HTTP to this collector base URL"
        " ('http://otel-collector:4318'; spans go to <url>/v1/traces); unset: no traces",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines on stderr: 'text' (readable) or 'json' (one object per line)",
    )
    allowed_hosts: str = Field(
        default="",
        description="Host header names the HTTP transports answer besides the bound address and"
        " loopback: 'tasks.example.com,*.internal'",
    )
    public_url: str | None = Field(
        default=None,
        description="The server's public base URL (https://tasks.example.org): calendar feed"
        " URLs start with it; unset, they are answered as paths",
    )
    allowed_origins: str = Field(
        default="",
        description="Browser origins the HTTP transports answer besides their own and loopback"
        " ones: 'https://app.example.com'",
    )

    calls_per_second: float = Field(
        default=20.0,
        gt=0,
        le=100_000,
        description="HTTP transports: tool calls one user may make per second, on average",
    )
    calls_burst: int = Field(
        default=40, ge=1, le=100_000, description="HTTP transports: calls one user may burst"
    )
    calls_in_flight: int = Field(
        default=4,
        ge=1,
        le=1_000,
        description="HTTP transports: one user's calls run at once; later ones wait their turn",
    )
    max_request_bytes: int = Field(
        default=1_048_576,
        ge=65_536,
        le=104_857_600,
        description="Largest request body (HTTP) or line (stdio) served; larger ones are refused",
    )

    realtime_heartbeat_seconds: float = Field(
        default=20.0,
        ge=0.05,
        le=3600,
        description="Realtime gateway: a heartbeat message after this long without a change",
    )
    realtime_queue_size: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Realtime gateway: messages a connection may fall behind before it is closed",
    )
    realtime_keep: int = Field(
        default=1000,
        ge=100,
        le=1_000_000,
        description="Realtime gateway: changes kept per user for clients that resume",
    )
    resource_poll_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=3600,
        description="MCP resource updates: how often the realtime feed is read for changes other"
        " processes made to the tasks of users whose sessions here subscribed",
    )
    realtime_feed_pubsub: str = Field(
        default="pubsub-realtime-feed",
        description="Realtime gateway (dapr): the pub/sub component of the shared, durable"
        " consumer group that writes the feed (DUEFLOW_DAPR_PUBSUB is the per-replica one that"
        " pushes to sockets)",
    )
    realtime_ticket_seconds: int = Field(
        default=30, ge=1, le=3600, description="Realtime gateway: how long a ticket may wait"
    )
    realtime_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 90, description="Board: how long a sign-in lasts"
    )

    oauth_issuer: str | None = Field(
        default=None,
        description="OAuth resource-server mode: the issuer (`iss`) of the JWT access tokens"
        " accepted, e.g. https://login.example.com/realms/team",
    )
    oauth_audience: str | None = Field(
        default=None,
        description="OAuth: the `aud` tokens must carry, this MCP endpoint's public URL"
        " (https://tasks.example.org/mcp); published as the resource (RFC 9728, RFC 8707)",
    )
    oauth_jwks_url: str | None = Field(
        default=None, description="OAuth: the issuer's JSON Web Key Set URL"
    )
    oauth_algorithms: str = Field(
        default="RS256", description="OAuth: accepted signing algorithms, comma-separated"
    )
    oauth_user_claim: str = Field(
        default="sub", description="OAuth: the claim that names the user (sub, email, ...)"
    )

    @model_validator(mode="after")
    def _oauth_complete(self) -> Settings:
        if self.oauth_issuer is None:
            return self
        missing = [
            name
            for name, value in (
                ("DUEFLOW_OAUTH_AUDIENCE", self.oauth_audience),
                ("DUEFLOW_OAUTH_JWKS_URL", self.oauth_jwks_url),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"DUEFLOW_OAUTH_ISSUER is set, so {' and '.join(missing)} must be too")
        for name, url in (
            ("DUEFLOW_OAUTH_ISSUER", self.oauth_issuer),
            ("DUEFLOW_OAUTH_AUDIENCE", self.oauth_audience),
            ("DUEFLOW_OAUTH_JWKS_URL", self.oauth_jwks_url),
        ):
            parts = urlsplit(url or "")
            loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
            if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
                raise ValueError(f"{name}: must be an https URL (http only on loopback)")
        unknown = set(self.oauth_algorithm_list()) - set(SIGNING_ALGORITHMS)
        if unknown or not self.oauth_algorithm_list():
            raise ValueError(
                "DUEFLOW_OAUTH_ALGORITHMS: use asymmetric algorithms only, from"
                f" {', '.join(SIGNING_ALGORITHMS)}"
            )
        return self

    def oauth_algorithm_list(self) -> list[str]:
        return [part.strip() for part in self.oauth_algorithms.split(",") if part.strip()]

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

    @field_validator("otlp_endpoint")
    @classmethod
    def _collector_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "DUEFLOW_OTLP_ENDPOINT must be an http(s) URL of an OTLP/HTTP collector, e.g."
                " http://otel-collector:4318"
            )
        return value.strip().rstrip("/")

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

    @field_validator("dapr_statestore", "api_app_id", "audit_app_id")
    @classmethod
    def _named(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise ValueError(f"{PREFIX}{str(info.field_name).upper()} must not be empty")
        return value.strip()

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _port_or_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("audit_retention_days", mode="before")
    @classmethod
    def _whole_days(cls, value: Any) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_RETENTION:
            raise ValueError(
                f"DUEFLOW_AUDIT_RETENTION_DAYS is {value!r}: give a whole number of days from 1"
                f" to {MAX_RETENTION} (e.g. 365), or leave it unset to keep history forever"
            )
        return int(text)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in filter(None, (part.strip() for part in value.split(","))):
            parts = urlsplit(origin)
            if origin == "null" or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"DUEFLOW_ALLOWED_ORIGINS: {origin!r} is not an origin; write"
                    " scheme://host[:port], e.g. 'https://app.example.com'"
                )
            if parts.path.strip("/") or parts.query or parts.fragment:
                raise ValueError(
                    f"DUEFLOW_ALLOWED_ORIGINS: {origin!r} has a path; an origin is"
                    " scheme://host[:port] only"
                )
        return value

    @model_validator(mode="after")
    def _webhooks_usable(self) -> Settings:
        urls = self.webhook_urls()
        secret = (self.webhook_secret or "").strip()
        if urls and len(secret) < 16:
            raise ValueError(
                "DUEFLOW_WEBHOOKS is set but DUEFLOW_WEBHOOK_SECRET is "
                + ("missing" if not secret else "shorter than 16 characters")
                + "; set it to a long random key (e.g. `openssl rand -hex 32`) and give it to"
                " the receivers to verify X-Dueflow-Signature"
            )
        for user, url in urls.items():
            problem = webhook_url_problem(url, self.webhook_allow_private)
            if problem:
                raise ValueError(f"DUEFLOW_WEBHOOKS: the URL for {user!r} {problem}")
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'dueflow.db'}"

    def webhook_urls(self) -> dict[str, str]:
        """The user -> URL map of DUEFLOW_WEBHOOKS."""
        urls: dict[str, str] = {}
        for entry in filter(None, (part.strip() for part in self.webhooks.split(","))):
            user, sep, url = entry.partition("=")
            if not sep or not user.strip() or not url.strip():
                raise ValueError(
                    f"DUEFLOW_WEBHOOKS: {entry!r} is not user=URL; write"
                    " 'alice=https://hooks.example/a,bob=https://hooks.example/b'"
                )
            if user.strip() in urls:
                raise ValueError(f"DUEFLOW_WEBHOOKS: {user.strip()!r} has two URLs; keep one")
            urls[user.strip()] = url.strip()
        return urls

    def notification_config(self, mcp: bool) -> NotificationConfig:
        """How reminders are delivered; `mcp` when this process serves MCP sessions."""
        return NotificationConfig(
            webhooks=self.webhook_urls(),
            webhook_secret=(self.webhook_secret or "").strip() or None,
            webhook_timeout_seconds=self.webhook_timeout_seconds,
            webhook_allow_private=self.webhook_allow_private,
            mcp=mcp,
            max_attempts=self.notification_max_attempts,
            retry_base_seconds=self.notification_retry_seconds,
            poll_seconds=self.notification_poll_seconds,
        )

    def allowed_host_names(self) -> list[str]:
        """The host names of DUEFLOW_ALLOWED_HOSTS (a port given is ignored)."""
        return [part.strip() for part in self.allowed_hosts.split(",") if part.strip()]

    def allowed_origin_list(self) -> list[str]:
        """The origins of DUEFLOW_ALLOWED_ORIGINS."""
        return [
            part.strip().rstrip("/") for part in self.allowed_origins.split(",") if part.strip()
        ]

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


def webhook_url_problem(url: str, allow_private: bool) -> str | None:
    """What is wrong with a webhook URL that needs no lookup to tell, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"must start with http:// or https://, not {parts.scheme or 'nothing'!r}"
    if not parts.hostname:
        return "has no host"
    try:
        _ = parts.port
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    address = literal_address(parts.hostname)
    reason = refusal(address) if address is not None and not allow_private else None
    if reason:
        return (
            f"points at {address}, a {reason} address; set DUEFLOW_WEBHOOK_ALLOW_PRIVATE=true"
            " to allow it"
        )
    return None
