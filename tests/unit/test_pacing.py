"""wait_set: the one "wait for an event, at most N seconds" of every stage."""

from __future__ import annotations

import asyncio

from services.common.pacing import wait_set


def test_true_when_the_event_is_already_set() -> None:
    async def scenario() -> bool:
        event = asyncio.Event()
        event.set()
        return await wait_set(event, 3600)

    assert asyncio.run(scenario()) is True


def test_false_when_the_time_runs_out_first() -> None:
    async def scenario() -> bool:
        return await wait_set(asyncio.Event(), 0)

    assert asyncio.run(scenario()) is False


def test_true_when_another_task_sets_it_meanwhile() -> None:
    async def scenario() -> bool:
        event = asyncio.Event()
        asyncio.get_running_loop().call_soon(event.set)
        return await wait_set(event, 3600)

    assert asyncio.run(scenario()) is True
