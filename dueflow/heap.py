"""The heap of a long-running Dueflow process: no collection while it loads and wires itself, and
none walking what it built once it runs."""

from __future__ import annotations

import gc


def defer_collections() -> None:
    """Run no garbage collection until settle_heap() or resume_collections(): the `dueflow`
    console script calls it before anything loads, and every command ends it.

    A start allocates most of what the process holds until exit (modules, schemas, the tables'
    metadata, pydantic's validators): collections during it walk that growing heap over and
    over and find next to nothing to free."""
    gc.disable()


def resume_collections() -> None:
    """Collect as usual again, for a process that has nothing long-lived to settle."""
    gc.enable()


def settle_heap() -> None:
    """Keep what a wired process holds for its whole life out of the garbage collector's way, and
    collect as usual from here on.

    A full collection walks every tracked object; in a server process most of them live until
    exit, and walking them stopped the event loop for 100-180 ms at a time: longer than a reminder
    may be late. gc.freeze() moves them to a generation no collection visits. Garbage left by the
    start is frozen with them rather than collected first: it is small, and finding it would take
    a full collection just as the process should start serving. Call once, after wiring."""
    gc.freeze()
    gc.enable()
