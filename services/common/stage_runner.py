"""A stage's life: serve the door and the stage's workers until SIGTERM, then
stop taking input, let the workers finish within the grace period, publish
`offline` and disconnect, within a second grace period: a stage stops in at
most twice `shutdown_grace_s`, even when the broker is gone.

A worker that fails is a stop too: the same orderly shutdown runs (the other
workers finish, `offline` is published), then `serve` raises `StageFailed`, so
the process exits non-zero instead of hanging `online` with nothing working."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from schemas.service import Health, Metrics
from schemas.topics import HEALTH, METRICS
from services.common.door import MqttDoor, PublishFailed
from services.common.pacing import wait_set

log = logging.getLogger(__name__)

Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class StageFailed(Exception):
    """A worker of the stage failed; the stage stopped in order because of it."""


def _guarded(worker: Worker, stop: asyncio.Event, failures: list[Exception]) -> Worker:
    """`worker`, but its failure is recorded and stops the stage instead of
    tearing down the task group mid-flight."""

    async def run(_: asyncio.Event) -> None:
        try:
            await worker(stop)
        except Exception as error:
            log.exception("worker failed: stopping the stage", extra={"worker": _name(worker)})
            failures.append(error)
            stop.set()

    return run


def _name(worker: Worker) -> str:
    return getattr(worker, "__qualname__", None) or repr(worker)


async def serve(
    door: MqttDoor,
    workers: Sequence[Worker] = (),
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run `door` and `workers` (each gets the stop event) until stopped."""
    stop = stop or asyncio.Event()
    failures: list[Exception] = []
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with asyncio.TaskGroup() as tasks:
            door_task = tasks.create_task(door.run())
            tasks.create_task(_report_health(door, stop))
            running = [
                tasks.create_task(_guarded(worker, stop, failures)(stop)) for worker in workers
            ]
            await stop.wait()
            log.info("stopping", extra={"grace_s": door.settings.shutdown_grace_s})
            door.close_intake()  # no new input while the workers finish
            if running:
                _, late = await asyncio.wait(running, timeout=door.settings.shutdown_grace_s)
                for task in late:
                    task.cancel()
            door.close()
            # The door finishes the message in hand and publishes `offline`;
            # with the broker gone either could wait out a whole operation
            # timeout, so it gets one more grace period, then is cancelled
            # (the broker's last will says `offline` for it).
            done, _ = await asyncio.wait({door_task}, timeout=door.settings.shutdown_grace_s)
            if not done:
                log.warning("door did not close in time: cancelled")
                door_task.cancel()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    if failures:
        raise StageFailed(f"worker failed: {failures[0]!r}") from failures[0]


def resident_memory(status: Path = Path("/proc/self/status")) -> dict[str, float]:
    """`{"rss_mb": ...}`: this process's resident memory (VmRSS), for `edgegw
    top`; empty where /proc is not there."""
    try:
        with status.open(encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("VmRSS:"):
                    return {"rss_mb": round(int(line.split()[1]) / 1024, 1)}
    except (OSError, ValueError, IndexError):
        pass
    return {}


async def _report_health(door: MqttDoor, stop: asyncio.Event) -> None:
    started = time.monotonic()
    interval = door.settings.health_interval_s
    while not stop.is_set():
        await wait_set(stop, interval)
        if stop.is_set() or not door.connected.is_set():
            continue
        health = Health(
            source=door.user,
            stage=door.user,
            state="ok" if door.metrics.degraded is None else "degraded",
            uptime_s=round(time.monotonic() - started, 3),
            connected=True,
            reconnects=door.reconnects,
            detail=door.metrics.degraded or "",
        )
        metrics = Metrics(
            source=door.user,
            stage=door.user,
            interval_s=interval,
            counters=dict(door.metrics.counters),
            gauges={**door.metrics.gauges, **resident_memory()},
        )
        try:
            await door.publish(HEALTH, health, stage=door.user)
            await door.publish(METRICS, metrics, stage=door.user)
        except PublishFailed as error:
            log.warning("health not published", extra={"error": str(error)})
