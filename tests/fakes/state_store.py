"""One state store of the fake sidecar: entries with etags, and the Query API (alpha).

What daprd does for a JSON-capable store (state.postgresql v1): every save bumps the key's etag;
a save or delete that names an etag other than the current one, or a first-write save without
one over an existing key, is refused with ABORTED (daprd's code for an etag mismatch). Queries
filter with EQ, IN, AND and OR on dotted paths of the JSON values, sort, and page with a limit
and an opaque token (an offset here, as in state.postgresql); only entries saved with
contentType application/json are JSON to the store, so only they can match.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import grpc

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class StateRequest:
    """One state request as the sidecar received it."""

    rpc: str
    store: str
    key: str = ""
    etag: str | None = None
    first_write: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    query: Any = None


@dataclass(frozen=True, slots=True)
class Entry:
    value: bytes
    etag: str
    content_type: str

    def json(self) -> Any:
        return json.loads(self.value)


class StateRefused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FakeStateStore:
    """The entries of one store, by key."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._versions = itertools.count(1)

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def values(self) -> dict[str, Any]:
        """key -> the JSON value of every entry."""
        return {key: entry.json() for key, entry in self.entries.items()}

    def save(
        self,
        key: str,
        value: bytes,
        etag: str | None,
        first_write: bool,
        metadata: dict[str, str],
    ) -> None:
        self._check(key, etag, first_write)
        content_type = metadata.get("contentType", "")
        self.entries[key] = Entry(value, str(next(self._versions)), content_type)

    def delete(self, key: str, etag: str | None) -> None:
        self._check(key, etag, first_write=False)
        self.entries.pop(key, None)

    def _check(self, key: str, etag: str | None, first_write: bool) -> None:
        current = self.entries.get(key)
        if etag:
            if current is None or current.etag != etag:
                raise StateRefused(
                    grpc.StatusCode.ABORTED,
                    f"failed saving state in state store: possible etag mismatch for {key}",
                )
        elif first_write and current is not None:
            raise StateRefused(
                grpc.StatusCode.ABORTED,
                f"failed saving state in state store: first-write without an etag for {key}",
            )

    def query(self, query: dict[str, Any]) -> tuple[list[tuple[str, Entry]], str]:
        """The page of entries the query selects, and the token of the next page ("" if none)."""
        matching = [
            (key, entry)
            for key, entry in self.entries.items()
            if entry.content_type == JSON
            and ("filter" not in query or _matches(query["filter"], entry.json()))
        ]
        for order in reversed(query.get("sort") or []):
            matching.sort(
                key=lambda item: _sortable(_lookup(item[1].json(), order["key"])),
                reverse=order.get("order", "ASC").upper() == "DESC",
            )
        page = query.get("page") or {}
        offset = int(page.get("token") or 0)
        limit = int(page.get("limit") or 0)
        if limit <= 0:
            return matching[offset:], ""
        found = matching[offset : offset + limit]
        # state.postgresql answers a token with every non-empty limited page
        return found, str(offset + len(found)) if found else ""


def _matches(where: dict[str, Any], value: Any) -> bool:
    [(operator, operand)] = where.items()
    if operator == "EQ":
        [(path, wanted)] = operand.items()
        return bool(_lookup(value, path) == wanted)
    if operator == "IN":
        [(path, wanted)] = operand.items()
        return _lookup(value, path) in wanted
    if operator == "AND":
        return all(_matches(part, value) for part in operand)
    if operator == "OR":
        return any(_matches(part, value) for part in operand)
    raise StateRefused(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported query operator {operator}")


_MISSING = object()


def _lookup(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _sortable(value: Any) -> tuple[int, Any]:
    # missing and null sort first, then values of one kind among themselves
    if value is _MISSING or value is None:
        return (0, "")
    return (1, value)
