"""Audio chunks' metadata, class scores and sound events."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from schemas.envelope import Count, Envelope, EventType, Model, Name, Timestamp, TopicLevel

# MQTT 5 user properties every chunk on `audio/<mic>/chunk` carries; the
# payload is PCM16 little-endian mono at `sample_rate` (16 000 Hz).
CHUNK_PROPERTIES: Final = ("seq", "capture_ts", "sample_rate", "channels")
SAMPLE_RATE_HZ: Final = 16_000


class ClassScore(Model):
    index: Count
    name: Name
    score: float = Field(ge=0, le=1)


class AudioClasses(Envelope):
    mic: TopicLevel
    patch_index: Count
    start_ts: Timestamp
    end_ts: Timestamp
    top: list[ClassScore]


class SoundEvent(Envelope):
    kind: Literal["sound"] = "sound"
    type: EventType
    event_id: Name
    mic: TopicLevel
    label: Name = Field(description="class of interest, e.g. 'glass_break'")
    top_class: Name = Field(description="the AudioSet class that scored best")
    score: float = Field(ge=0, le=1)
    peak_score: float = Field(ge=0, le=1)
    start_ts: Timestamp
    end_ts: Timestamp | None = None
