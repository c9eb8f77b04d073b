"""The heap of a long-running Dueflow process."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Keep what a wired process holds for its whole life out of the garbage collector's way.

    A full collection walks every tracked object; in a server process most of them (modules,
    schemas, the tables' metadata, pydantic's validators) live until exit, and walking them
    stopped the event loop for 100-180 ms at a time: longer than a reminder may be late.
    gc.freeze() moves them to a generation no collection visits. Call once, after wiring."""
    gc.collect()
    gc.freeze()
