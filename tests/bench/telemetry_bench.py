"""Telemetry benchmark: `python -m tests.bench.telemetry_bench` prints one JSON object.

A real VictoriaMetrics (Debian's `victoria-metrics`, the test server) is
started on a free port. The same line-protocol points are written to it

- by the recorder's writer (`InfluxWriter`: bounded buffer, batches, the
  blocking client call in a thread, retries armed), fed all at once and timed
  until every point is confirmed written;
- raw, by influxdb-client alone: its synchronous write API, the same batch
  size, one call after another on the main thread — the floor for this client
  and server on this machine.

`writer_vs_raw` = writer points/s over raw points/s (1.0: the writer adds
nothing). Each figure is the best of REPEATS wall-clock runs, alternated so
that both see the same server state. The points come from real message
models through `points_for` (its own rate is reported as `conversion`).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from schemas.audio import AudioClasses, ClassScore
from schemas.envelope import Envelope
from schemas.gas import GasReading
from services.telemetry_recorder.points import points_for
from services.telemetry_recorder.settings import TelemetryRecorderSettings
from services.telemetry_recorder.writer import InfluxWriter
from tests.integration.telemetry_helpers import VictoriaMetrics

READINGS = 40_000
AUDIO_PATCHES = 4_000  # x 5 classes
BATCH_SIZE = 1000
REPEATS = 3


def _messages() -> list[Envelope]:
    start = time.time() - 3600
    messages: list[Envelope] = [
        GasReading(
            source="gas-replay",
            sensor=f"sensor{i % 50}",
            gas="co",
            value=float(i % 97),
            ts=start + i * 0.01,
        )
        for i in range(READINGS)
    ]
    top = [ClassScore(index=i, name=f"class {i}", score=0.1 * (5 - i)) for i in range(5)]
    messages += [
        AudioClasses(
            source="audio-classifier",
            mic=f"mic{i % 4}",
            patch_index=i,
            start_ts=start + i * 0.48,
            end_ts=start + i * 0.48 + 0.96,
            top=top,
        )
        for i in range(AUDIO_PATCHES)
    ]
    return messages


def _raw_write(url: str, lines: list[str]) -> float:
    with InfluxDBClient(url=url, token="bench", org="bench", retries=False) as client:
        write_api = client.write_api(write_options=SYNCHRONOUS)
        started = time.perf_counter()
        for start in range(0, len(lines), BATCH_SIZE):
            write_api.write(
                bucket="bench",
                record=lines[start : start + BATCH_SIZE],
                write_precision=WritePrecision.NS,
            )
        return time.perf_counter() - started


async def _writer_write(url: str, lines: list[str]) -> float:
    settings = TelemetryRecorderSettings(
        influx_url=url,
        influx_org="bench",
        influx_bucket="bench",
        batch_size=BATCH_SIZE,
        max_buffered_points=len(lines),
    )
    writer = InfluxWriter(settings)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writer.run(stop))
        await asyncio.sleep(0.05)  # the client is made; not part of the timing
        started = time.perf_counter()
        writer.add(lines)
        while writer.written < len(lines):
            if writer.dropped or not writer.server_ok:
                raise RuntimeError("the writer lost points to a healthy server")
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - started
        stop.set()
    return elapsed


def run() -> dict[str, Any]:
    messages = _messages()
    started = time.process_time()
    lines = [point.to_line() for m in messages for point in points_for(m, "bench")]
    conversion_s = time.process_time() - started

    with tempfile.TemporaryDirectory(prefix="edgegw-bench-vm-") as folder:
        server = VictoriaMetrics(Path(folder))
        server.start()
        try:
            _raw_write(server.url, lines[:BATCH_SIZE])  # warm-up: connections, series
            raw_s = writer_s = float("inf")
            for _ in range(REPEATS):
                raw_s = min(raw_s, _raw_write(server.url, lines))
                writer_s = min(writer_s, asyncio.run(_writer_write(server.url, lines)))
        finally:
            server.stop()

    points = len(lines)
    return {
        "telemetry": {
            "server": "victoria-metrics (InfluxDB v2 write API)",
            "points": points,
            "batch_size": BATCH_SIZE,
            "repeats": REPEATS,
            "writer": {
                "wall_s": round(writer_s, 4),
                "points_per_s": round(points / writer_s),
            },
            "baseline_raw_influxdb_client": {
                "wall_s": round(raw_s, 4),
                "points_per_s": round(points / raw_s),
            },
            "writer_vs_raw": round(raw_s / writer_s, 3),
            "conversion": {
                "messages": len(messages),
                "cpu_s": round(conversion_s, 4),
                "messages_per_s": round(len(messages) / conversion_s),
                "points_per_s": round(points / conversion_s),
            },
        }
    }


def main() -> None:
    sys.stdout.write(orjson.dumps(run(), option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
