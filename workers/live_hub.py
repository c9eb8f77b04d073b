"""The gateway's open connections by user, and the bounded queue each one is fed through."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from domain.turns import TurnSchedule

DEFAULT_QUEUE = 256  # messages a connection may fall behind before it is closed


class Subscription:
    """One connection's live messages: a bounded queue that, once full, marks it overflowed
    instead of growing (the connection is then closed, and its client resumes)."""

    def __init__(self, user_id: str, size: int) -> None:
        self.user_id = user_id
        # (position, text) of a change; (None, text) of a message outside the feed (a turn)
        self.queue: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue(size)
        self.overflowed = asyncio.Event()

    def offer(self, position: int | None, text: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait((position, text))
        except asyncio.QueueFull:
            self.overflowed.set()


class Hub:
    """Hands each committed message to every open connection of its user, and only theirs."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE) -> None:
        self.queue_size = queue_size
        self._by_user: dict[str, set[Subscription]] = {}
        self._turns: TurnSchedule | None = None

    def keep_time(self, turns: TurnSchedule) -> None:
        """Have `turns` follow the users with an open connection, and hear of their changes."""
        self._turns = turns
        for user_id in self._by_user:
            turns.watch(user_id)

    def subscribe(self, user_id: str) -> Subscription:
        subscription = Subscription(user_id, self.queue_size)
        self._by_user.setdefault(user_id, set()).add(subscription)
        if self._turns is not None:
            self._turns.watch(user_id)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._by_user.get(subscription.user_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_user[subscription.user_id]
                if self._turns is not None:
                    self._turns.unwatch(subscription.user_id)

    def deliver(self, user_id: str, position: int, text: str) -> None:
        """Queue a message for the user's connections (called once its feed row committed)."""
        subscribers = self._by_user.get(user_id, ())
        for subscription in subscribers:
            subscription.offer(position, text)
        if subscribers and self._turns is not None:
            self._turns.reconsider(user_id)  # the change may move the user's next turn

    def announce(self, user_id: str, text: str) -> None:
        """Queue a message outside the feed (no position) for the user's connections."""
        for subscription in self._by_user.get(user_id, ()):
            subscription.offer(None, text)

    def watched(self) -> bool:
        """Whether any connection is open: a live view waits for the next change."""
        return bool(self._by_user)

    def connections(self) -> Iterator[Subscription]:
        for subscribers in self._by_user.values():
            yield from subscribers
