"""Audio chunks' metadata, class scores and sound events."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from schemas.envelope import Envelope, EventType, Model

# MQTT 5 user properties every chunk on `audio/<mic>/chunk` carries; the
# payload is PCM16 little-endian mono at `sample_rate` (16 000 Hz).
CHUNK_PROPERTIES: Final = ("seq", "capture_ts", "sample_rate", "channels")
SAMPLE_RATE_HZ: Final = 16_000


class ClassScore(Model):
    index: int = Field(ge=0)
    name: str
    score: float = Field(ge=0, le=1)


class AudioClasses(Envelope):
    mic: str
    patch_index: int = Field(ge=0)
    start_ts: float
    end_ts: float
    top: list[ClassScore]


class SoundEvent(Envelope):
    kind: Literal["sound"] = "sound"
    type: EventType
    event_id: str
    mic: str
    label: str = Field(description="class of interest, e.g. 'glass_break'")
    top_class: str = Field(description="the AudioSet class that scored best")
    score: float = Field(ge=0, le=1)
    peak_score: float = Field(ge=0, le=1)
    start_ts: float
    end_ts: float | None = None
