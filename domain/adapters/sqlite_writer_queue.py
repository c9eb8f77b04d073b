"""The queue SQLite's writers wait in, across processes: `flock` on a lock file beside the
database.

SQLite's own lock does not queue. A writer that finds it taken sleeps in the busy handler, in
steps that grow to 100 ms, and asks again; whoever asks the instant the lock is free takes it. So
with several processes writing, a writer that has waited a while sleeps the longest and keeps
losing to writers that just arrived, and its wait runs into seconds while the lock is mostly
busy with short transactions. Writers that first take a turn in this queue wait blocked in the
kernel on the lock file instead, and the one woken takes SQLite's lock at once.

The requests' writers queue here (sqlite_driver.begin_in_turn). The queue is advice, not the
lock: SQLite's write lock still decides. A writer outside it (background work, an urgent writer,
a migration, the sqlite3 shell) takes SQLite's lock as before, and a writer with a turn that
finds SQLite's lock taken asks for it again every half millisecond. A turn is given back when
its transaction ends, and by the kernel when its process dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable

# the lock file's name is the database's with this added, as SQLite names its -wal and -shm
SUFFIX = "-writers"


class Turn:
    """A writer's turn: it holds the queue's lock until release()."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Give the turn back (closing the file lets go of its flock); twice is harmless."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)


class WriterQueue:
    """The writers of one database file, taking turns through a lock file beside it."""

    def __init__(self, lock_path: str) -> None:
        self.lock_path = lock_path

    @classmethod
    def beside(cls, connection: sqlite3.Connection) -> WriterQueue | None:
        """The queue of the file `connection` writes to; None for an in-memory database or where
        the lock file cannot be made (a read-only directory): its writers wait in SQLite's busy
        handler alone."""
        database = next((row[2] for row in connection.execute("PRAGMA database_list")), "")
        if not database:
            return None
        queue = cls(database + SUFFIX)
        try:
            os.close(queue._open())
        except OSError:
            return None
        return queue

    def _open(self) -> int:
        # a descriptor of its own per turn: flock excludes other open files, in this process too
        return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def try_turn(self) -> Turn | None:
        """A turn now if nobody holds one; None (without waiting) if somebody does."""
        descriptor = self._open()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        return Turn(descriptor)

    async def turn(self, timeout: float, off_loop: OffLoop) -> Turn:
        """A turn, waiting for it at most `timeout` seconds (then sqlite3.OperationalError, as
        SQLite's busy timeout would raise). The wait blocks in flock on a thread `off_loop`
        runs it on (the connection's own), not on the event loop; a waiter cancelled or timed
        out gives its place up, and the thread hands back a turn it gets after that."""
        found = self.try_turn()
        if found is not None:
            return found
        waiter = _Waiter(self._open())
        try:
            await asyncio.wait_for(off_loop(waiter.wait), timeout)
        except TimeoutError:
            waiter.give_up()
            raise sqlite3.OperationalError("database is locked") from None
        except BaseException:
            waiter.give_up()
            raise
        return Turn(waiter.descriptor)


# runs a blocking call on another thread, e.g. an aiosqlite connection's _execute
OffLoop = Callable[[Callable[[], None]], Awaitable[None]]


class _Waiter:
    """One writer waiting in flock on a thread; whichever of it and give_up() comes second
    closes the descriptor when the turn is not taken."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        self._guard = threading.Lock()
        self._abandoned = False
        self._done = False

    def wait(self) -> None:
        """On the thread: block until the flock is ours."""
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX)
        finally:
            with self._guard:
                self._done = True
                if self._abandoned:  # nobody waits for this turn any more
                    os.close(self.descriptor)

    def give_up(self) -> None:
        """On the loop, for a waiter that stops waiting: close now if the thread is done (it may
        hold the turn), else leave the closing to the thread."""
        with self._guard:
            self._abandoned = True
            if self._done:
                os.close(self.descriptor)
