"""How much one page of a listing may carry: at most its `limit` items, and items up to about
PAGE_CHARACTERS of text, so that no answer grows with what users may store (a full task holds
tens of thousands of characters; 200 of them, several megabytes). A page cut short by size ends
with a next_cursor like any other."""

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
