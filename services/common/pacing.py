"""Waiting on an event for at most some seconds: the "every N seconds until
stop" loops, the polls of a connection, a wake-up with a deadline."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set, for at most `seconds`; True if it is set.

    `while not stop.is_set(): await wait_set(stop, period); ...` is a loop
    that runs every `period` and once more when `stop` comes.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
