"""The PCM chunk on `audio/<mic>/chunk`: PCM16 mono 16 kHz samples, their metadata
as MQTT 5 user properties, and the checks a received chunk must pass."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from schemas.audio import CHUNK_PROPERTIES
from schemas.audio import SAMPLE_RATE_HZ as SAMPLE_RATE_HZ  # the contract's rate, re-exported
from schemas.envelope import MAX_INT, MAX_TIMESTAMP

SAMPLE_WIDTH_BYTES: Final = 2
# A chunk longer than this is refused: it would hold the classifier for too
# long and is more likely a misbehaving producer than real audio.
MAX_CHUNK_SECONDS: Final = 10.0

FloatAudio = npt.NDArray[np.float32]
Pcm16 = npt.NDArray[np.int16]


class BadChunkError(ValueError):
    """A received audio chunk is unusable; `reason` says why (it goes to the dead letter)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ChunkMeta:
    """What travels beside the samples of one chunk (MQTT 5 user properties)."""

    seq: int
    capture_ts: float  # wall-clock time of the first sample
    sample_rate_hz: int = SAMPLE_RATE_HZ
    channels: int = 1

    def to_properties(self) -> dict[str, str]:
        return {
            "seq": str(self.seq),
            "capture_ts": f"{self.capture_ts:.6f}",
            "sample_rate": str(self.sample_rate_hz),
            "channels": str(self.channels),
        }

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> ChunkMeta:
        """Raises BadChunkError naming what is missing or wrong; the declared
        rate and channels are checked against the payload by `validate_chunk`."""
        missing = [name for name in CHUNK_PROPERTIES if name not in properties]
        if missing:
            raise BadChunkError(
                f"missing properties {missing}; every chunk carries {CHUNK_PROPERTIES}"
            )
        seq = _integer(properties, "seq")
        if seq < 0:
            raise BadChunkError(f"property seq={seq} is negative")
        if seq > MAX_INT:
            raise BadChunkError(f"property seq={seq} is out of range")
        try:
            capture_ts = float(properties["capture_ts"])
        except ValueError:
            reason = f"property capture_ts={properties['capture_ts']!r} is not a number"
            raise BadChunkError(reason) from None
        # Up to half the models' range: room for the patch times added to it.
        if not (math.isfinite(capture_ts) and 0 <= capture_ts <= MAX_TIMESTAMP / 2):
            raise BadChunkError(f"property capture_ts={capture_ts} is not a time")
        sample_rate_hz = _integer(properties, "sample_rate")
        return cls(seq, capture_ts, sample_rate_hz, _integer(properties, "channels"))


def _integer(properties: Mapping[str, str], name: str) -> int:
    try:
        return int(properties[name])
    except ValueError:
        raise BadChunkError(f"property {name}={properties[name]!r} is not an integer") from None


def float_to_pcm16(samples: FloatAudio) -> Pcm16:
    # Clip first: resampling can overshoot full scale slightly, and a wrap
    # from +32767 to -32768 would be a loud click.
    scaled = np.clip(np.rint(samples * 32768.0), -32768, 32767)
    pcm: Pcm16 = scaled.astype(np.int16)
    return pcm


def pcm16_to_float(pcm: Pcm16) -> FloatAudio:
    return pcm.astype(np.float32) / np.float32(32768.0)


def validate_chunk(
    payload: bytes,
    *,
    sample_rate_hz: int | None,
    channels: int | None = 1,
    max_seconds: float = MAX_CHUNK_SECONDS,
) -> Pcm16:
    """Check a received chunk against the wire format and return its samples.

    `sample_rate_hz` and `channels` are what the sender declared in the
    message properties; None means it declared nothing, which is refused for
    the rate (a silent mismatch would shift every frequency the model sees).
    """
    if not payload:
        raise BadChunkError("empty payload")
    if len(payload) % SAMPLE_WIDTH_BYTES:
        raise BadChunkError(
            f"payload length {len(payload)} bytes is odd: PCM16 samples are 2 bytes each"
        )
    if sample_rate_hz is None:
        raise BadChunkError("no sample rate declared; expected 16000 Hz")
    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise BadChunkError(f"declared sample rate {sample_rate_hz} Hz; expected 16000 Hz")
    if channels is not None and channels != 1:
        raise BadChunkError(f"declared {channels} channels; expected mono")
    max_bytes = int(max_seconds * SAMPLE_RATE_HZ) * SAMPLE_WIDTH_BYTES
    if len(payload) > max_bytes:
        raise BadChunkError(
            f"payload of {len(payload)} bytes exceeds {max_seconds} s ({max_bytes} bytes)"
        )
    # Little-endian on the wire whatever the host's byte order.
    return np.frombuffer(payload, dtype="<i2").astype(np.int16)
