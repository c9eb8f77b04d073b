"""What the use-case tests share: a service over the in-memory store, and a store that says
which units of work it opened and whether a writing one is open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import TracebackType

from domain.clock import FixedClock
from domain.events import EventType
from domain.memory import MemoryStore, MemoryUnitOfWork
from domain.service import TaskService

USER = "ada"
OTHER = "bob"
NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # a Monday


@dataclass(frozen=True, slots=True)
class Opened:
    read_only: bool
    inserts_only: bool


@dataclass
class WatchedStore(MemoryStore):
    """A MemoryStore that remembers each unit it opened and counts the writing ones open."""

    opened: list[Opened] = field(default_factory=list)
    writers_open: int = 0

    def __call__(self, *, read_only: bool = False, inserts_only: bool = False) -> MemoryUnitOfWork:
        self.opened.append(Opened(read_only, inserts_only))
        return WatchedUnit(self, read_only=read_only, inserts_only=inserts_only)

    def kinds(self) -> list[EventType]:
        return [event.event_type for event in self.events]


class WatchedUnit(MemoryUnitOfWork):
    store: WatchedStore

    async def __aenter__(self) -> WatchedUnit:
        if not self.read_only:
            self.store.writers_open += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.read_only:
            self.store.writers_open -= 1
        await super().__aexit__(exc_type, exc, tb)


class WatchingClock(FixedClock):
    """A clock that notes, each time it is read, whether a writing unit of work was open:
    phrases ('tomorrow') are read at the clock's now."""

    def __init__(self, start: dt.datetime, store: WatchedStore) -> None:
        super().__init__(start)
        self._store = store
        self.read_while_writing: list[bool] = []

    def now(self) -> dt.datetime:
        self.read_while_writing.append(self._store.writers_open > 0)
        return super().now()


@dataclass
class World:
    store: WatchedStore
    clock: WatchingClock
    service: TaskService


def world(timezone: str = "UTC", store: WatchedStore | None = None) -> World:
    store = store or WatchedStore()
    clock = WatchingClock(NOW, store)
    return World(store, clock, TaskService(store, clock, default_timezone=timezone))
