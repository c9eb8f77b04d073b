"""How much one page of history may carry: at most its `limit` entries, and entries up to about
PAGE_CHARACTERS of text, so that no answer grows with what users may store (an entry carries
each changed field's old and new value: two descriptions of 10,000 characters, two lists of 500
EXDATEs; 200 of them, several megabytes). A page cut short by size ends with a next_cursor like
any other. Task listings need no such budget: they carry a summary of each task (no description,
no EXDATEs), which the limits on titles and tags keep under it at 200 a page."""

from __future__ import annotations

from collections.abc import Iterable

PAGE_CHARACTERS = 1_000_000


def fitting(sizes: Iterable[int], budget: int = PAGE_CHARACTERS) -> int:
    """How many leading items of these sizes fit in `budget`; always at least one, so that a
    listing makes progress whatever one item holds."""
    count = total = 0
    for size in sizes:
        total += size
        if count and total > budget:
            break
        count += 1
    return count
