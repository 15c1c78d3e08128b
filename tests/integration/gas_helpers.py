"""Readings and topics for the gas-average tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

from schemas.gas import GasReading


def reading(
    sensor: str, gas: str, value: float, ts: float | None = None, **extra: object
) -> dict[str, Any]:
    body = GasReading(
        source="gas-replay",
        sensor=sensor,
        gas=gas,
        value=value,
        ts=ts if ts is not None else time.time(),
        id=uuid.uuid4().hex,
    ).model_dump(mode="json")
    body.update(extra)
    return body
