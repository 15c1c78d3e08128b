"""The QoS levels a microphone's sound analytic (`audio.<mic>`) offers.

What this analytic uploads is its results, not audio: sound events
(new / update / end, which alert-forwarder turns into alerts for the cloud).
The per-patch classes on `audio/<mic>/classes` stay on the gateway. So the
knob is the classification rate: `patch_stride` N = YAMNet runs on every
N-th 0.48 s patch only (1, 2, 4, 8). Fewer patches mean fewer event
updates uploaded (they come every `update_every_patches` classified
patches) and less CPU, at the price of missed short sounds and later
alarms.

Utility and events per second at each stride come from the profile table
(`audio_levels.json`, written by `python -m profiling.audio`,
see there for how they are measured). Cost is the profiled event-message
rate times the real size of one sound-event message on the wire.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from schemas.analytics import AudioKnobParams
from schemas.audio import SoundEvent
from schemas.envelope import Model
from schemas.qos import QosLevel
from schemas.topic_spec import publish_bytes
from schemas.topics import AUDIO_CLASSIFIER, EVENT

PROFILE_PATH = Path(__file__).with_name("audio_levels.json")


class ProfiledAudioLevel(Model):
    patch_stride: int = Field(ge=1)
    utility: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1, description="reference sound events also detected")
    mean_delay_s: float = Field(ge=0, description="mean extra delay of `new` vs full rate")
    event_messages_per_s: float = Field(ge=0, description="new/update/end messages per second")
    classified_patches_per_s: float = Field(ge=0)


class AudioProfile(Model):
    generated_by: str
    reference_patch_stride: int = Field(ge=1)
    sounds: list[str]
    program_seconds: float = Field(gt=0)
    reference_events: int = Field(ge=0)
    latency_half_life_s: float = Field(gt=0)
    levels: list[ProfiledAudioLevel] = Field(min_length=1)


def load_profile(path: Path = PROFILE_PATH) -> AudioProfile:
    return AudioProfile.model_validate_json(path.read_bytes())


def event_message_bytes(root: str, mic: str) -> int:
    """Bytes one sound-event message of this mic puts on the wire (a typical one)."""
    # Fixed ids, times and a long-ish label so the cost is the same every run.
    sample = SoundEvent(
        source=AUDIO_CLASSIFIER,
        type="update",
        event_id="0" * 32,
        mic=mic,
        label="smoke_alarm",
        top_class="Smoke detector, smoke alarm",
        score=0.876543,
        peak_score=0.912345,
        start_ts=1_800_000_000.123456,
        end_ts=1_800_000_004.123456,
        id="0" * 32,
        ts=1_800_000_004.5,
    )
    topic = EVENT.topic(root, source=mic)
    return publish_bytes(topic, sample.to_bytes())


def mic_levels(profile: AudioProfile, root: str, mic: str) -> list[QosLevel]:
    size_bits = event_message_bytes(root, mic) * 8
    return [
        QosLevel(
            name=f"every-{row.patch_stride}-patch",
            params=AudioKnobParams(patch_stride=row.patch_stride).model_dump(),
            # A floor of 1 bit/s so that no level is free: a solver would
            # otherwise see every stride as equally cheap when no event fired.
            cost_kbps=round(max(size_bits * row.event_messages_per_s / 1000, 0.001), 4),
            utility=row.utility,
        )
        for row in profile.levels
    ]
