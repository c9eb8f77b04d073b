"""The cursors of list_tasks and sort_tasks: where the next page starts, bound to its filters.

A cursor carries a fingerprint of the filters (and sort) that issued it, so it is refused under
other ones rather than answering a page of a different listing.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from domain.model import Task
from domain.query import SortKey, TaskFilter, bad_cursor, decode_cursor, encode_cursor

LIST = "list"
SORT = "sort"


def list_position(cursor: str | None, where: TaskFilter) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) a list page starts after; None for the first page."""
    if cursor is None:
        return None
    data = decode_cursor(cursor, LIST)
    if data.get("f") != _fingerprint(where):
        raise bad_cursor()
    try:
        return dt.datetime.fromisoformat(data["c"]), str(data["i"])
    except (KeyError, TypeError, ValueError):
        raise bad_cursor() from None


def list_cursor(last: Task, where: TaskFilter) -> str:
    """The cursor of the list page after the one ending at `last`."""
    return encode_cursor(
        LIST, {"c": last.created_at.isoformat(), "i": last.id, "f": _fingerprint(where)}
    )


def sort_offset(cursor: str | None, where: TaskFilter, order: tuple[SortKey, ...]) -> int:
    """How many sorted tasks the page skips; 0 for the first page."""
    if cursor is None:
        return 0
    data = decode_cursor(cursor, SORT)
    if data.get("f") != _fingerprint(where, order) or not isinstance(data.get("o"), int):
        raise bad_cursor()
    offset: int = data["o"]
    return offset


def sort_cursor(offset: int, where: TaskFilter, order: tuple[SortKey, ...]) -> str:
    """The cursor of the sorted page that starts `offset` tasks in."""
    return encode_cursor(SORT, {"o": offset, "f": _fingerprint(where, order)})


def _fingerprint(where: TaskFilter, order: tuple[SortKey, ...] = ()) -> str:
    raw = repr((where, [str(k) for k in order]))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
