"""Sound files into the chunk format of `audio/<mic>/chunk` (services.media.pcm_chunk).

Reading a sound file (WAV natively; OGG Vorbis through a Debian decoder when
one is installed), resampling it to 16 kHz mono and cutting it into
fixed-length chunks.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from services.media.pcm_chunk import (
    SAMPLE_RATE_HZ,
    SAMPLE_WIDTH_BYTES,
    FloatAudio,
    Pcm16,
    float_to_pcm16,
)

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
    from scipy.signal import resample_poly  # ~80 MB: only when the rate differs

    divisor = math.gcd(from_rate_hz, to_rate_hz)
    resampled = resample_poly(samples, up=to_rate_hz // divisor, down=from_rate_hz // divisor)
    return np.asarray(resampled, dtype=np.float32)


def load_pcm16(path: Path) -> Pcm16:
    """A sound file as PCM16 mono at 16 kHz, whatever its own rate and channels."""
    recording = read_audio_file(path)
    mono = to_mono(recording.samples)
    return float_to_pcm16(resample(mono, recording.sample_rate_hz))


def write_wav_pcm16(path: Path, pcm: Pcm16, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    from scipy.io import wavfile

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


def _read_pcm16_wav(path: Path) -> tuple[int, npt.NDArray[np.int16]] | None:
    """The common case without scipy: 16-bit integer PCM; None for anything else."""
    try:
        with wave.open(str(path), "rb") as reader:
            if reader.getsampwidth() != SAMPLE_WIDTH_BYTES:
                return None
            rate, channels = reader.getframerate(), reader.getnchannels()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError, OSError):
        return None  # scipy's reader decides (float, extensible, or truly unreadable)
    data = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels)
    return rate, data


def _read_wav(path: Path) -> Recording:
    pcm16 = _read_pcm16_wav(path)
    if pcm16 is not None:
        rate, pcm = pcm16
        return _recording(path, rate, pcm)
    from scipy.io import wavfile  # ~25 MB: only for WAVs the standard library cannot read

    try:
        rate, data = wavfile.read(path)
    # scipy's parser fails on malformed files with assorted errors (even an
    # UnboundLocalError when the fmt chunk is missing): any failure means "unreadable".
    except Exception as error:
        raise AudioFileError(f"{path}: not a readable WAV file ({error})") from error
    return _recording(path, rate, np.asarray(data))


def _recording(path: Path, rate: int, data: npt.NDArray[np.generic]) -> Recording:
    samples = _normalise(data)
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
