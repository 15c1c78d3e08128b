"""Fan-out of the view's updates to the browsers that follow them.

Each browser's stream has a bounded queue. One that falls behind is not
waited for: its queue is dropped and its stream ends, and the browser's
EventSource reconnects and starts again from a fresh copy of the view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.web.gateway_view import Update


class TooManyStreams(Exception):
    pass


class Follower:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Update] = asyncio.Queue(maxsize=size)
        self.dropped = asyncio.Event()


class LiveFeed:
    def __init__(
        self,
        max_followers: int,
        queue_size: int,
        on_count: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._on_count = on_count  # told how many browsers follow, on every change
        self._followers: set[Follower] = set()
        self._max = max_followers
        self._size = queue_size
        self.closed = asyncio.Event()

    def follow(self) -> Follower:
        if len(self._followers) >= self._max:
            raise TooManyStreams(f"{self._max} browsers follow already")
        follower = Follower(self._size)
        self._followers.add(follower)
        self._on_count(len(self._followers))
        return follower

    def leave(self, follower: Follower) -> None:
        self._followers.discard(follower)
        self._on_count(len(self._followers))

    def send(self, update: Update | None) -> None:
        if update is None:
            return
        for follower in list(self._followers):
            try:
                follower.queue.put_nowait(update)
            except asyncio.QueueFull:
                self.leave(follower)
                follower.dropped.set()

    def close(self) -> None:
        """End every stream (the stage is stopping)."""
        self.closed.set()

    def __len__(self) -> int:
        return len(self._followers)
