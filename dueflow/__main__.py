"""The `dueflow` console script (and `python -m dueflow`): the command of dueflow.cli, loaded with
garbage collection deferred, since most of what a start allocates is kept for the process's life
(see dueflow.heap); `dueflow chat`, a client of the server, goes straight to dueflow.chat."""

from __future__ import annotations

import sys

from dueflow.heap import defer_collections


def main() -> int:
    """Run `dueflow` with the process's arguments."""
    if sys.argv[1:2] == ["chat"]:
        from dueflow.chat.command import main as chat

        return chat(sys.argv[2:])
    defer_collections()  # before dueflow.cli and all it imports load; the command resumes it
    from dueflow.cli import main as command

    return command()


if __name__ == "__main__":
    raise SystemExit(main())
