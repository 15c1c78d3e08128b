"""Sounds, chunk properties and message filters for the audio pipeline tests."""

from __future__ import annotations

import time
from typing import Any

from tests.harness.assets import AUDIO_DIR, require
from tests.harness.probe import Probe

# The AudioSet families the unit tests established on these very sounds.
from tests.unit.test_audio_classifier import ALARM_FAMILY, BELL_FAMILY, TELEPHONE_FAMILY

__all__ = ["ALARM_FAMILY", "AUDIO_DIR", "BELL_FAMILY", "TELEPHONE_FAMILY", "require"]


def chunk_properties(seq: int, chunk_s: float = 0.5) -> dict[str, str]:
    """What audio-capture sends with each chunk."""
    return {
        "seq": str(seq),
        "capture_ts": f"{time.time() + seq * chunk_s:.6f}",
        "sample_rate": "16000",
        "channels": "1",
    }


def classes_of(observer: Probe, root: str, mic: str) -> list[dict[str, Any]]:
    topic = f"{root}/audio/{mic}/classes"
    return [m.json() for m in observer.received(lambda m: m.topic == topic)]


def events_of(observer: Probe, root: str, mic: str) -> list[dict[str, Any]]:
    topic = f"{root}/event/{mic}"
    return [m.json() for m in observer.received(lambda m: m.topic == topic)]
