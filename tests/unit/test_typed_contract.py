"""The topic contract is checked by mypy: `subscribe(SPEC, handler)` rejects a
handler written for another payload (or one that forgets that a retained JSON
topic can be cleared), `publish(SPEC, payload)` rejects the wrong model.

Runs the project's mypy (strict, its pydantic plugin, pyproject's config) on
small snippets against this checkout's code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

REPO = Path(__file__).resolve().parents[2]

# Every line marked `# wrong` must be reported, and no other.
WRONG = """\
from schemas.gas import GasAverage, GasReading
from schemas.qos import QosKnob
from schemas.topics import EVENT, FRAME, GAS_READING, QOS_KNOB
from services.common.door import MqttDoor, Received


async def on_average(message: Received[GasAverage]) -> None: ...
async def on_knob(message: Received[QosKnob]) -> None: ...
async def on_reading(message: Received[GasReading]) -> None: ...


async def body(door: MqttDoor, average: GasAverage, reading: GasReading) -> None:
    door.subscribe(GAS_READING, on_average)  # wrong: a reading is not an average
    door.subscribe(QOS_KNOB, on_knob)  # wrong: a cleared retained knob is None
    door.subscribe(FRAME, on_reading)  # wrong: a frame is JPEG bytes
    await door.publish(GAS_READING, average)  # wrong model
    await door.publish(GAS_READING, None)  # wrong: only a retained topic is cleared
    await door.publish(FRAME, reading)  # wrong: a frame is bytes
    await door.publish(EVENT, average)  # wrong: an average is no event
"""

RIGHT = """\
from schemas.gas import GasEvent, GasReading
from schemas.qos import QosKnob
from schemas.service import ONLINE
from schemas.topics import EVENT, FRAME, GAS_READING, QOS_KNOB, STATUS
from services.common.door import MqttDoor, Received


async def on_reading(message: Received[GasReading]) -> None:
    print(message.payload.sensor)


async def on_knob(message: Received[QosKnob | None]) -> None:
    if message.payload is not None:
        print(message.payload.level)


async def on_status(message: Received[bytes]) -> None:
    print(message.payload.decode())


async def on_anything(message: Received[object]) -> None:
    print(message.raw)


async def body(door: MqttDoor, reading: GasReading, event: GasEvent) -> None:
    door.subscribe(GAS_READING, on_reading)
    door.subscribe(QOS_KNOB, on_knob)
    door.subscribe(STATUS, on_status)
    door.subscribe(EVENT, on_anything)
    await door.publish(GAS_READING, reading)
    await door.publish(EVENT, event)
    await door.publish(QOS_KNOB, None)
    await door.publish(STATUS, ONLINE)
    await door.publish(FRAME, b"\\xff\\xd8")
"""


def _mypy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> dict[int, str]:
    """mypy's errors on `source`, by line."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    # This checkout's packages, not whatever the venv's editable install points at.
    monkeypatch.setenv("MYPYPATH", str(REPO))
    report, errors, status = api.run(
        [
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(snippet),
        ]
    )
    assert status in (0, 1), errors
    found: dict[int, str] = {}
    for line in report.splitlines():
        matched = re.match(r".*snippet\.py:(\d+): error: (.*)", line)
        if matched:
            found.setdefault(int(matched.group(1)), matched.group(2))
    return found


def _marked(source: str) -> set[int]:
    return {n for n, line in enumerate(source.splitlines(), 1) if "# wrong" in line}


def test_mypy_rejects_a_handler_or_payload_for_the_wrong_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _mypy(tmp_path, monkeypatch, WRONG)
    assert set(found) == _marked(WRONG), found


def test_mypy_accepts_handlers_and_payloads_of_the_right_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _mypy(tmp_path, monkeypatch, RIGHT) == {}
