"""Batched writes to InfluxDB through its v2 write API (one HTTP POST per batch).

Points wait in a bounded buffer. A batch goes out when `batch_size` points
are waiting or `flush_interval_s` has passed; the blocking HTTP call runs in a
thread. A write that fails for a reason time can cure (server away, 5xx, 429,
a refused token an operator may fix) is retried with exponential backoff and
jitter while new points keep arriving; when the buffer is full the oldest
points are dropped and counted, so memory stays bounded however long the
server is away, and everything still held is written once it is back. A batch
the server refuses as malformed is dropped (counted), never retried forever.
Nothing here raises into the stage: the recorder outlives any server trouble.

The POST is the standard library's: influxdb-client loaded ~25 MB of modules
(its generated API, reactivex, dateutil) into the stage for this one request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Iterable
from typing import Final

from services.common.backoff import Backoff
from services.common.pacing import wait_set
from services.common.stage_metrics import StageMetrics
from services.telemetry_recorder.settings import TelemetryRecorderSettings

log = logging.getLogger(__name__)

# Statuses that say "this batch will never be accepted": retrying would block
# every later point behind it.
_REJECTED: Final = frozenset({400, 413, 422})
# How long the final flush on shutdown may take, at most.
FINAL_FLUSH_S: Final = 3.0


class BatchRejected(Exception):
    """The server refused a batch as malformed."""


class LineBuffer:
    """At most `capacity` line-protocol points; the oldest go first when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lines: deque[str] = deque()
        self.dropped = 0

    def extend(self, lines: Iterable[str]) -> int:
        """Add points; returns how many old ones were dropped for them."""
        self._lines.extend(lines)
        return self._trim()

    def take(self, count: int) -> list[str]:
        """Remove and return the oldest `count` points."""
        return [self._lines.popleft() for _ in range(min(count, len(self._lines)))]

    def put_back(self, batch: list[str]) -> int:
        """Return an unwritten batch to the front (it is older than the rest)."""
        self._lines.extendleft(reversed(batch))
        return self._trim()

    def _trim(self) -> int:
        excess = len(self._lines) - self.capacity
        for _ in range(max(0, excess)):
            self._lines.popleft()
        dropped = max(0, excess)
        self.dropped += dropped
        return dropped

    def __len__(self) -> int:
        return len(self._lines)


class InfluxWriter:
    def __init__(
        self, settings: TelemetryRecorderSettings, metrics: StageMetrics | None = None
    ) -> None:
        self._settings = settings
        self._metrics = metrics or StageMetrics()
        self._buffer = LineBuffer(settings.max_buffered_points)
        self._batch_ready = asyncio.Event()
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        query = urllib.parse.urlencode(
            {"org": settings.influx_org, "bucket": settings.influx_bucket, "precision": "ns"}
        )
        self._write_url = f"{settings.influx_url.rstrip('/')}/api/v2/write?{query}"
        self._headers = {
            "Authorization": f"Token {settings.influx_token.get_secret_value()}",
            "Content-Type": "text/plain; charset=utf-8",
        }
        self.server_ok = True
        self.written = 0
        self._dropped_before_outage = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    def add(self, lines: list[str]) -> None:
        """Queue points (on the event loop; never blocks)."""
        if not lines:
            return
        dropped = self._buffer.extend(lines)
        self._metrics.count("points_buffered", len(lines))
        if dropped:
            self._metrics.count("points_dropped", dropped)
        self._metrics.gauge("buffered_points", len(self._buffer))
        if len(self._buffer) >= self._settings.batch_size:
            self._batch_ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Write batches until `stop`, then flush what is left within FINAL_FLUSH_S."""
        while not stop.is_set():
            await self._wait_for_batch(stop)
            if not await self.flush():
                await wait_set(stop, self._backoff.next_delay())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_FLUSH_S):
                await self.flush()
        if len(self._buffer):
            log.warning("points not written at shutdown", extra={"points": len(self._buffer)})

    async def _wait_for_batch(self, stop: asyncio.Event) -> None:
        if len(self._buffer) >= self._settings.batch_size:
            return
        self._batch_ready.clear()
        deadline = self._settings.flush_interval_s
        async with asyncio.TaskGroup() as tasks:
            waiters = [
                tasks.create_task(self._batch_ready.wait()),
                tasks.create_task(stop.wait()),
            ]
            await asyncio.wait(waiters, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def flush(self) -> bool:
        """Write everything buffered, batch by batch; False at the first failure."""
        while len(self._buffer):
            batch = self._buffer.take(self._settings.batch_size)
            try:
                async with asyncio.timeout(self._settings.write_timeout_s + 1.0):
                    await asyncio.to_thread(self._write, batch)
            except BatchRejected as error:
                self._metrics.count("points_rejected", len(batch))
                log.error(
                    "server refused a batch", extra={"points": len(batch), "error": str(error)}
                )
                continue
            except Exception as error:  # any failure: keep the points, retry later
                self._write_failed(error)
                dropped = self._buffer.put_back(batch)
                if dropped:
                    self._metrics.count("points_dropped", dropped)
                self._metrics.gauge("buffered_points", len(self._buffer))
                return False
            self._write_succeeded(len(batch))
        return True

    def _write(self, batch: list[str]) -> None:
        """Blocking: one HTTP write, no retry of its own. Runs in a thread."""
        request = urllib.request.Request(
            self._write_url, data="\n".join(batch).encode(), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._settings.write_timeout_s) as answer:
                answer.read()
        except urllib.error.HTTPError as error:
            if error.code in _REJECTED:
                body = error.read(300).decode(errors="replace")
                raise BatchRejected(f"{error.code}: {body}") from error
            raise

    def _write_succeeded(self, points: int) -> None:
        self.written += points
        self._metrics.count("points_written", points)
        self._metrics.gauge("buffered_points", len(self._buffer))
        self._backoff.reset()
        if not self.server_ok:
            log.info(
                "time-series server back",
                extra={
                    "buffered": len(self._buffer),
                    "dropped": self._buffer.dropped - self._dropped_before_outage,
                },
            )
        self.server_ok = True
        self._metrics.gauge("server_ok", 1)

    def _write_failed(self, error: Exception) -> None:
        self._metrics.count("write_failures")
        self._metrics.gauge("server_ok", 0)
        if self.server_ok:  # once per outage, not once per retry
            self._dropped_before_outage = self._buffer.dropped
            log.error(
                "time-series server unreachable; buffering",
                extra={"error": f"{type(error).__name__}: {str(error)[:300]}"},
            )
        self.server_ok = False
