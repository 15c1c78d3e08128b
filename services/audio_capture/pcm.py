"""PCM16 mono 16 kHz: the one audio format that travels on `audio/<mic>/chunk`.

Reading a sound file (WAV natively; OGG Vorbis through a Debian decoder when
one is installed), resampling it to 16 kHz mono, cutting it into fixed-length
chunks, and checking a received chunk before it reaches the classifier.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.io import wavfile
from scipy.signal import resample_poly

SAMPLE_RATE_HZ: Final = 16_000
SAMPLE_WIDTH_BYTES: Final = 2
# A chunk longer than this is refused: it would hold the classifier for too
# long and is more likely a misbehaving producer than real audio.
MAX_CHUNK_SECONDS: Final = 10.0

FloatAudio = npt.NDArray[np.float32]
Pcm16 = npt.NDArray[np.int16]

# Tried in this order; each writes a WAV at the file's own rate and channels.
_OGG_DECODERS: Final = (
    ("oggdec", "--quiet", "--output", "{wav}", "{ogg}"),
    ("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", "{ogg}", "{wav}"),
    ("sox", "{ogg}", "{wav}"),
)
_OGG_SUFFIXES: Final = frozenset({".ogg", ".oga"})
_DECODER_TIMEOUT_S: Final = 60.0


class AudioFileError(ValueError):
    """A sound file cannot be read: missing, corrupt, unsupported, or no decoder installed."""


class BadChunkError(ValueError):
    """A received audio chunk is unusable; `reason` says why (it goes to the dead letter)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Recording:
    """Samples as float32 in [-1, 1], shaped (frames, channels), at their own rate."""

    samples: FloatAudio
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return float(self.samples.shape[0] / self.sample_rate_hz)


def read_audio_file(path: Path) -> Recording:
    """Read a WAV file, or an OGG file through the first decoder found on PATH."""
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if path.suffix.lower() in _OGG_SUFFIXES:
        return _read_ogg(path)
    return _read_wav(path)


def to_mono(samples: FloatAudio) -> FloatAudio:
    if samples.ndim == 1:
        return samples
    mono: FloatAudio = samples.mean(axis=1, dtype=np.float32)
    return mono


def resample(
    samples: FloatAudio, from_rate_hz: int, to_rate_hz: int = SAMPLE_RATE_HZ
) -> FloatAudio:
    """Polyphase resampling of a mono signal (an anti-aliasing FIR is part of it)."""
    if from_rate_hz <= 0 or to_rate_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate_hz} -> {to_rate_hz}")
    if from_rate_hz == to_rate_hz:
        return samples.astype(np.float32, copy=False)
    divisor = math.gcd(from_rate_hz, to_rate_hz)
    resampled = resample_poly(samples, up=to_rate_hz // divisor, down=from_rate_hz // divisor)
    return np.asarray(resampled, dtype=np.float32)


def float_to_pcm16(samples: FloatAudio) -> Pcm16:
    # Clip first: resampling can overshoot full scale slightly, and a wrap
    # from +32767 to -32768 would be a loud click.
    scaled = np.clip(np.rint(samples * 32768.0), -32768, 32767)
    pcm: Pcm16 = scaled.astype(np.int16)
    return pcm


def pcm16_to_float(pcm: Pcm16) -> FloatAudio:
    return pcm.astype(np.float32) / np.float32(32768.0)


def load_pcm16(path: Path) -> Pcm16:
    """A sound file as PCM16 mono at 16 kHz, whatever its own rate and channels."""
    recording = read_audio_file(path)
    mono = to_mono(recording.samples)
    return float_to_pcm16(resample(mono, recording.sample_rate_hz))


def write_wav_pcm16(path: Path, pcm: Pcm16, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    wavfile.write(path, sample_rate_hz, pcm)


def samples_per_chunk(chunk_seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> int:
    samples = round(chunk_seconds * sample_rate_hz)
    if samples <= 0:
        raise ValueError(f"chunk duration {chunk_seconds} s holds no sample")
    return samples


def split_into_chunks(
    pcm: Pcm16, chunk_seconds: float, *, pad_last: bool = True
) -> Iterator[Pcm16]:
    """Consecutive chunks of exactly `chunk_seconds` each.

    The tail shorter than a chunk is zero-padded (silence) when `pad_last`,
    dropped otherwise, so every chunk on the wire has the same duration.
    """
    size = samples_per_chunk(chunk_seconds)
    full_chunks = len(pcm) // size
    for index in range(full_chunks):
        yield pcm[index * size : (index + 1) * size]
    tail = pcm[full_chunks * size :]
    if pad_last and len(tail) > 0:
        yield np.concatenate([tail, np.zeros(size - len(tail), dtype=np.int16)])


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


def _read_wav(path: Path) -> Recording:
    try:
        rate, data = wavfile.read(path)
    # scipy's parser fails on malformed files with assorted errors (even an
    # UnboundLocalError when the fmt chunk is missing): any failure means "unreadable".
    except Exception as error:
        raise AudioFileError(f"{path}: not a readable WAV file ({error})") from error
    samples = _normalise(np.asarray(data))
    if samples.ndim == 1:
        samples = samples[:, np.newaxis]
    if samples.shape[0] == 0:
        raise AudioFileError(f"{path}: no samples")
    return Recording(samples=samples, sample_rate_hz=int(rate))


def _normalise(data: npt.NDArray[np.generic]) -> FloatAudio:
    """Integer or float WAV samples as float32 in [-1, 1]."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.signedinteger):
        full_scale = float(2 ** (8 * data.dtype.itemsize - 1))
        return (data.astype(np.float64) / full_scale).astype(np.float32)
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32)
    raise AudioFileError(f"unsupported WAV sample type {data.dtype}")


def _read_ogg(path: Path) -> Recording:
    for command in _OGG_DECODERS:
        tool = command[0]
        if shutil.which(tool) is None:
            continue
        with tempfile.TemporaryDirectory(prefix="edgegw-ogg-") as folder:
            decoded = Path(folder) / "decoded.wav"
            try:
                subprocess.run(
                    [part.format(ogg=path, wav=decoded) for part in command],
                    check=True,
                    capture_output=True,
                    timeout=_DECODER_TIMEOUT_S,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                raise AudioFileError(f"{path}: {tool} could not decode it ({error})") from error
            return _read_wav(decoded)
    raise AudioFileError(
        f"{path}: no OGG decoder found (install Debian's vorbis-tools, ffmpeg or sox)"
    )
