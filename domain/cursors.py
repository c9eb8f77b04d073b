"""The cursors of list_tasks and sort_tasks: where the next page starts, bound to its filters.

A cursor carries a fingerprint of the filters (and sort) that issued it, so it is refused under
other ones rather than answering a page of a different listing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

from domain.model import Task
from domain.query import (
    SortKey,
    TaskFilter,
    bad_cursor,
    cursor_moment,
    cursor_number,
    decode_cursor,
    encode_cursor,
)

LIST = "list"
SORT = "sort"
_LIST_FIELDS = {"c": str, "i": str, "f": str}
_SORT_FIELDS = {"o": int, "f": str}
# deeper than any listing goes; a larger offset is not one this server issued
MAX_OFFSET = 10_000_000
# the shape of the ids Dueflow gives tasks (UUIDs), with room for the ids tests give them
_TASK_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def list_position(cursor: str | None, where: TaskFilter) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) a list page starts after; None for the first page."""
    if cursor is None:
        return None
    data = decode_cursor(cursor, LIST, _LIST_FIELDS)
    task_id: str = data["i"]
    if data["f"] != _fingerprint(where) or _TASK_ID.fullmatch(task_id) is None:
        raise bad_cursor()
    return cursor_moment(data["c"]), task_id


def list_cursor(last: Task, where: TaskFilter) -> str:
    """The cursor of the list page after the one ending at `last`."""
    return encode_cursor(
        LIST, {"c": last.created_at.isoformat(), "i": last.id, "f": _fingerprint(where)}
    )


def sort_offset(cursor: str | None, where: TaskFilter, order: tuple[SortKey, ...]) -> int:
    """How many sorted tasks the page skips; 0 for the first page."""
    if cursor is None:
        return 0
    data = decode_cursor(cursor, SORT, _SORT_FIELDS)
    if data["f"] != _fingerprint(where, order):
        raise bad_cursor()
    return cursor_number(data["o"], MAX_OFFSET)


def sort_cursor(offset: int, where: TaskFilter, order: tuple[SortKey, ...]) -> str:
    """The cursor of the sorted page that starts `offset` tasks in."""
    return encode_cursor(SORT, {"o": offset, "f": _fingerprint(where, order)})


def _fingerprint(where: TaskFilter, order: tuple[SortKey, ...] = ()) -> str:
    raw = repr((where, [str(k) for k in order]))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
