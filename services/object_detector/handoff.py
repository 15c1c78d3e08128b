"""One prepared frame between the decode thread and the model thread.

Latest wins, as in the mailbox: a frame put while another still waits
replaces it (the replaced one is handed back, for the caller to count as
dropped). The decode thread waits for the slot to empty before it prepares
the next frame, so the model always has one ready and never an old one.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class HandoffClosed(Exception):
    """The pipeline is stopping: nothing more goes through."""


class Handoff(Generic[T]):
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.replaced = 0

    def put(self, item: T) -> T | None:
        """Leave `item` for the taker; the item it replaced, if one waited."""
        with self._changed:
            if self._closed:
                raise HandoffClosed
            old, self._item = self._item, item
            if old is not None:
                self.replaced += 1
            self._changed.notify_all()
            return old

    def take(self, timeout_s: float) -> T | None:
        """The waiting item, waiting `timeout_s` at most for one; None if none
        came (or the hand-off is closed and empty)."""
        with self._changed:
            self._changed.wait_for(lambda: self._item is not None or self._closed, timeout_s)
            item, self._item = self._item, None
            if item is not None:
                self._changed.notify_all()
            return item

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until the taker has taken the waiting item; True if the slot is
        empty (and open)."""
        with self._changed:
            self._changed.wait_for(lambda: self._item is None or self._closed, timeout_s)
            return self._item is None and not self._closed

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
