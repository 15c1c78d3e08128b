"""`edgegw top`: every stage live — message rates in and out, drops, dead
letters, resident memory — from the `metrics/<stage>` each stage publishes
every `health_interval_s`. Rates are the counters' change over the stage's
reports of about the last `window_s`."""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from dataclasses import dataclass, field

from schemas.service import Health, Metrics
from schemas.topics import HEALTH, METRICS, STATUS
from services.cli.session import with_door
from services.cli.tables import format_table
from services.common.door import MqttDoor, Received
from services.common.settings import StageSettings

Key = tuple[str, str]  # (gateway, stage)
CLEAR = "\x1b[2J\x1b[H"
HISTORY = 64  # reports kept per stage
HEADERS = (
    "gateway",
    "stage",
    "status",
    "health",
    "in/s",
    "out/s",
    "drops/s",
    "drops",
    "dead",
    "rss MB",
    "reconn",
)


def is_drop(counter: str) -> bool:
    """Counters that count something a stage let go (`frames_dropped`, ...)."""
    return "drop" in counter


@dataclass
class StageLine:
    status: str = "?"
    health: Health | None = None
    last: Metrics | None = None
    history: deque[Metrics] = field(default_factory=lambda: deque(maxlen=HISTORY))
    rates: dict[str, float] = field(default_factory=dict)


class TopBoard:
    """What `top` shows; fed by the MQTT handlers, no I/O."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.lines: dict[Key, StageLine] = {}
        self.window_s = window_s  # rates are over about this long

    def _line(self, key: Key) -> StageLine:
        return self.lines.setdefault(key, StageLine())

    def observe_status(self, key: Key, word: str) -> None:
        self._line(key).status = word or "gone"

    def observe_health(self, key: Key, health: Health) -> None:
        self._line(key).health = health

    def observe_metrics(self, key: Key, metrics: Metrics) -> None:
        line = self._line(key)
        if line.last is not None and metrics.ts <= line.last.ts:
            return
        restarted = line.last is not None and any(
            count < line.last.counters.get(name, 0) for name, count in metrics.counters.items()
        )
        if restarted:  # a restarted stage counts from zero again
            line.history.clear()
        line.history.append(metrics)
        while len(line.history) > 2 and metrics.ts - line.history[1].ts >= self.window_s:
            line.history.popleft()
        line.last = metrics
        base = line.history[0]
        elapsed = metrics.ts - base.ts
        line.rates = (
            {
                name: (count - base.counters.get(name, 0)) / elapsed
                for name, count in metrics.counters.items()
            }
            if elapsed > 0
            else {}
        )

    def rows(self) -> list[list[object]]:
        rows: list[list[object]] = []
        for (gateway, stage), line in sorted(self.lines.items()):
            rates, last = line.rates, line.last
            counters = last.counters if last is not None else {}
            rss = last.gauges.get("rss_mb") if last is not None else None

            def rate(*names: str, rates: dict[str, float] = rates) -> str:
                known = [rates[name] for name in names if name in rates]
                return f"{sum(known):.1f}" if known else "-"

            drops = [name for name in counters if is_drop(name)]
            rows.append(
                [
                    gateway,
                    stage,
                    line.status,
                    line.health.state if line.health else "-",
                    rate("received"),
                    rate("published", "forwarded"),
                    rate(*drops) if drops else ("0.0" if last is not None else "-"),
                    sum(counters[name] for name in drops) if last is not None else "-",
                    counters.get("dead_letters", 0) if last is not None else "-",
                    f"{rss:.1f}" if rss is not None else "-",
                    line.health.reconnects if line.health else "-",
                ]
            )
        return rows

    def render(self) -> list[str]:
        return format_table(HEADERS, self.rows(), right=set(range(4, len(HEADERS))))


async def run_top(settings: StageSettings, root: str, interval_s: float, count: int | None) -> int:
    board = TopBoard()

    def key(message: Received[object]) -> Key:
        return message.topic.split("/")[1], message.params["stage"]

    async def on_status(message: Received[bytes]) -> None:
        board.observe_status(key(message), message.raw.decode("utf-8", "replace").strip())

    async def on_health(message: Received[Health | None]) -> None:
        if message.payload is not None:
            board.observe_health(key(message), message.payload)

    async def on_metrics(message: Received[Metrics]) -> None:
        board.observe_metrics(key(message), message.payload)

    def prepare(door: MqttDoor) -> None:
        door.subscribe(STATUS, on_status)
        door.subscribe(HEALTH, on_health)
        door.subscribe(METRICS, on_metrics)

    async def body(door: MqttDoor) -> None:
        shown = 0
        live = sys.stdout.isatty()
        while count is None or shown < count:
            await asyncio.sleep(interval_s)
            lines = board.render()
            print((CLEAR if live else "") + "\n".join(lines) + ("" if live else "\n"), flush=True)
            shown += 1

    await with_door(settings, root, prepare, body)
    return 0
