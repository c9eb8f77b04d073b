"""Personal access tokens: who may call the HTTP transports, with which scopes, until when.

A token reads `dfp_<id>_<secret>`: the prefix lets secret scanners recognise it, the id finds its
row, and only a salted SHA-256 of the secret is kept (the secret is 192 random bits, so a fast
hash is enough; the salt keeps equal secrets apart). The text is shown once, when it is created.
Every request reads the token's row, so a revocation or an expiry holds on the next request on
every replica; the last use is written at most once a minute per token, not once per request.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from domain.errors import NotFound, ValidationFailed, echo
from domain.ports import Clock
from domain.salted import matches, new_id, new_secret

READ = "tasks:read"
WRITE = "tasks:write"
SCOPES = (READ, WRITE)
PREFIX = "dfp_"
MAX_NAME = 100
MAX_USER = 200
MAX_LIFETIME = dt.timedelta(days=3650)
LAST_USED_EVERY = dt.timedelta(minutes=1)
_TEXT = re.compile(r"dfp_([0-9a-f]{16})_([0-9a-f]{48})")
_LIFETIME = re.compile(r"(\d{1,5})([hdw])")
_UNITS = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


@dataclass(frozen=True, slots=True)
class PersonalToken:
    """A token as an operator sees it (never its secret)."""

    id: str
    user_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None

    def state(self, now: dt.datetime) -> str:
        """active, revoked or expired."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class Bearer:
    """Who a bearer token stands for: the user, the scopes, and the personal token's id if any."""

    user_id: str
    scopes: tuple[str, ...]
    token_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token's row: the token and the salted hash of its secret."""

    token: PersonalToken
    salt: str
    digest: str


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One entry of the access log: a token created, revoked, or refused (never its secret)."""

    at: dt.datetime
    action: str  # created | revoked | refused
    token_id: str | None
    user_id: str | None
    detail: str = ""


class TokenStore(Protocol):
    async def add(self, stored: StoredToken) -> None: ...

    async def find(self, token_id: str) -> StoredToken | None: ...

    async def tokens(self, user_id: str | None) -> list[PersonalToken]: ...

    async def revoke(self, token_id: str, now: dt.datetime) -> PersonalToken | None:
        """Mark the token revoked (once); None if there is no such token."""
        ...

    async def used(self, token_id: str, now: dt.datetime) -> None: ...

    async def record(self, event: AccessEvent) -> None: ...

    async def access_log(self, user_id: str | None, limit: int) -> list[AccessEvent]: ...


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes named, each known and once, in SCOPES order; all of them when none is named."""
    for scope in scopes:
        if scope not in SCOPES:
            raise ValidationFailed(
                "scope", f"{echo(scope)} is not a scope", f"use {READ} or {WRITE}"
            )
    return tuple(scope for scope in SCOPES if scope in scopes) if scopes else SCOPES


def expiry(text: str | None, now: dt.datetime) -> dt.datetime | None:
    """When a token given `--expires 90d` (hours, days or weeks; `never`) stops working."""
    if text is None or text == "never":
        return None
    match = _LIFETIME.fullmatch(text)
    lifetime = int(match[1]) * _UNITS[match[2]] if match else None
    if lifetime is None or not dt.timedelta(0) < lifetime <= MAX_LIFETIME:
        raise ValidationFailed(
            "expires",
            f"{echo(text)} is not a lifetime Dueflow reads",
            f"write 12h, 90d or 26w (at most {MAX_LIFETIME.days} days), or never",
        )
    return now + lifetime


class PersonalTokens:
    """Creates, lists, revokes and checks personal access tokens; logs who did what."""

    def __init__(self, store: TokenStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._last_written: dict[str, dt.datetime] = {}

    async def create(
        self,
        user_id: str,
        scopes: Sequence[str] = (),
        expires: str | None = None,
        name: str = "",
    ) -> tuple[PersonalToken, str]:
        """A new token and its text, which is shown this once and kept nowhere."""
        if (
            not 1 <= len(user_id) <= MAX_USER
            or not user_id.isprintable()
            or user_id != user_id.strip()
        ):
            raise ValidationFailed(
                "user",
                f"{echo(user_id)} is not a user name",
                f"give 1 to {MAX_USER} printable characters",
            )
        if len(name) > MAX_NAME:
            raise ValidationFailed("name", f"has {len(name)} characters", f"keep it to {MAX_NAME}")
        now = self._clock.now()
        token = PersonalToken(
            id=new_id(),
            user_id=user_id,
            name=name,
            scopes=check_scopes(scopes),
            created_at=now,
            expires_at=expiry(expires, now),
        )
        made = new_secret()
        await self._store.add(StoredToken(token, made.salt, made.digest))
        await self._store.record(
            AccessEvent(now, "created", token.id, user_id, ",".join(token.scopes))
        )
        return token, f"{PREFIX}{token.id}_{made.secret}"

    async def tokens(self, user_id: str | None = None) -> list[PersonalToken]:
        return await self._store.tokens(user_id)

    async def revoke(self, token_id: str) -> PersonalToken:
        now = self._clock.now()
        token = await self._store.revoke(token_id, now)
        if token is None:
            raise NotFound(
                f"token: no token {echo(token_id)}. Fix: use an id from `dueflow tokens list`."
            )
        await self._store.record(AccessEvent(now, "revoked", token.id, token.user_id))
        return token

    async def access_log(self, user_id: str | None = None, limit: int = 100) -> list[AccessEvent]:
        return await self._store.access_log(user_id, limit)

    async def verify(self, text: str) -> PersonalToken | None:
        """The active token `text` is, or None (the refusal of a known token is logged)."""
        match = _TEXT.fullmatch(text)
        if match is None:
            return None
        token_id, secret = match[1], match[2]
        stored = await self._store.find(token_id)
        if stored is None:
            return None
        now = self._clock.now()
        token = stored.token
        if not matches(secret, stored.salt, stored.digest):
            await self._refused(token, now, "wrong secret")
            return None
        state = token.state(now)
        if state != "active":
            await self._refused(token, now, state)
            return None
        last = self._last_written.get(token.id, token.last_used_at)
        if last is None or now - last >= LAST_USED_EVERY:
            self._last_written[token.id] = now
            await self._store.used(token.id, now)
            token = replace(token, last_used_at=now)
        return token

    async def _refused(self, token: PersonalToken, now: dt.datetime, why: str) -> None:
        # at most one entry a minute per token: a client retrying a revoked token in a loop
        # must not turn each attempt into a write
        key = f"refused:{token.id}"
        last = self._last_written.get(key)
        if last is None or now - last >= LAST_USED_EVERY:
            self._last_written[key] = now
            await self._store.record(AccessEvent(now, "refused", token.id, token.user_id, why))


class OwnTokens:
    """The bearer tokens Dueflow itself knows: those of DUEFLOW_TOKENS (each one user, every
    scope) and personal access tokens. Any other token is for an outside issuer to judge."""

    def __init__(self, configured: Mapping[str, str], personal: PersonalTokens | None) -> None:
        self._configured = configured
        self._personal = personal

    def knows(self, token: str) -> bool:
        """Whether `token` is Dueflow's to accept or refuse (no outside issuer is asked)."""
        return token in self._configured or token.startswith(PREFIX)

    async def bearer(self, token: str) -> Bearer | None:
        """Who `token` stands for, or None when it is not an active token of Dueflow's."""
        user = self._configured.get(token)
        if user is not None:
            return Bearer(user, SCOPES)
        if self._personal is None or not token.startswith(PREFIX):
            return None
        found = await self._personal.verify(token)
        return None if found is None else Bearer(found.user_id, found.scopes, found.id)
