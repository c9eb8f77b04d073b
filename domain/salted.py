"""Secrets Dueflow hands out once and keeps only as a salted hash: personal access tokens
(domain/access.py) and calendar feed URLs (domain/calendar_feeds.py).

A secret is 192 random bits, so one SHA-256 over a per-secret salt is enough: a slow password
hash would add latency on every request and no safety. Comparisons take constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Salted:
    """A new secret (shown once) and what is kept of it."""

    secret: str
    salt: str
    digest: str


def new_id() -> str:
    """The public half of a handed-out secret: 16 hex characters that find its row."""
    return secrets.token_hex(8)


def new_secret() -> Salted:
    """A fresh secret with its salt and salted hash."""
    secret, salt = secrets.token_hex(24), secrets.token_hex(16)
    return Salted(secret, salt, digest(salt, secret))


def digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def matches(secret: str, salt: str, kept: str) -> bool:
    """Whether `secret` is the one kept as (`salt`, `kept`), in constant time."""
    return hmac.compare_digest(digest(salt, secret), kept)
