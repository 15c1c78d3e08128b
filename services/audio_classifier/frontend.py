"""YAMNet's log-mel front end in numpy: waveform at 16 kHz -> patches of 96x64.

It reproduces tensorflow/models research/audioset/yamnet features.py: a
25 ms periodic Hann window in a 512-point FFT every 10 ms, magnitudes,
64 HTK mel bands over 125-7500 Hz (tf.signal.linear_to_mel_weight_matrix),
log(mel + 0.001), then patches of 96 frames every 48 frames. The model was
trained and quantized on exactly these features, so any change here is a
change of model input, not a tuning knob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE_HZ: Final = 16_000
WINDOW_SAMPLES: Final = 400  # 25 ms
HOP_SAMPLES: Final = 160  # 10 ms
FFT_LENGTH: Final = 512  # the next power of two above the window
SPECTROGRAM_BINS: Final = FFT_LENGTH // 2 + 1
MEL_BANDS: Final = 64
MEL_MIN_HZ: Final = 125.0
MEL_MAX_HZ: Final = 7500.0
LOG_OFFSET: Final = 0.001
PATCH_FRAMES: Final = 96  # 0.96 s
PATCH_HOP_FRAMES: Final = 48  # 0.48 s

# Samples one patch spans (the last frame's window runs past its hop) and the
# samples between the starts of two patches.
PATCH_SAMPLES: Final = (PATCH_FRAMES - 1) * HOP_SAMPLES + WINDOW_SAMPLES  # 15600
PATCH_HOP_SAMPLES: Final = PATCH_HOP_FRAMES * HOP_SAMPLES  # 7680
PATCH_HOP_SECONDS: Final = PATCH_HOP_SAMPLES / SAMPLE_RATE_HZ
PATCH_SECONDS: Final = PATCH_FRAMES * HOP_SAMPLES / SAMPLE_RATE_HZ

FloatArray = npt.NDArray[np.float32]


def periodic_hann(length: int) -> FloatArray:
    """The Hann window tf.signal.hann_window(periodic=True) returns."""
    n = np.arange(length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def hertz_to_mel(frequency_hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """HTK mel scale, as TensorFlow uses."""
    return 1127.0 * np.log1p(frequency_hz / 700.0)


def mel_weight_matrix(
    *,
    mel_bands: int = MEL_BANDS,
    spectrogram_bins: int = SPECTROGRAM_BINS,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    lower_hz: float = MEL_MIN_HZ,
    upper_hz: float = MEL_MAX_HZ,
) -> FloatArray:
    """(spectrogram_bins, mel_bands) triangular filters, the tf.signal way.

    Triangles are linear in mel, peak at 1 (no area normalisation), and the
    DC bin gets no weight.
    """
    nyquist_hz = sample_rate_hz / 2.0
    bin_mels = hertz_to_mel(np.linspace(0.0, nyquist_hz, spectrogram_bins)[1:])[:, np.newaxis]
    edges = np.linspace(
        hertz_to_mel(np.array(lower_hz)), hertz_to_mel(np.array(upper_hz)), mel_bands + 2
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels - lower) / (center - lower)
    falling = (upper - bin_mels) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, ((1, 0), (0, 0))).astype(np.float32)


@dataclass(frozen=True)
class FrontEnd:
    """The constant tables, built once per classifier rather than per call."""

    window: FloatArray
    mel_weights: FloatArray

    @classmethod
    def create(cls) -> FrontEnd:
        return cls(window=periodic_hann(WINDOW_SAMPLES), mel_weights=mel_weight_matrix())

    def log_mel_spectrogram(self, waveform: FloatArray) -> FloatArray:
        """(frames, 64) log-mel frames; only frames whose window fits entirely."""
        if waveform.ndim != 1:
            raise ValueError(f"expected a mono waveform, got shape {waveform.shape}")
        if len(waveform) < WINDOW_SAMPLES:
            return np.zeros((0, MEL_BANDS), dtype=np.float32)
        # A strided view: frames share memory with the waveform, no copy.
        frames = sliding_window_view(waveform.astype(np.float32, copy=False), WINDOW_SAMPLES)
        windowed = frames[::HOP_SAMPLES] * self.window
        # rfft pads each frame at its end to 512 points, as tf.signal.stft does.
        magnitude = np.abs(np.fft.rfft(windowed, n=FFT_LENGTH, axis=1)).astype(np.float32)
        mel = magnitude @ self.mel_weights
        log_mel: FloatArray = np.log(mel + np.float32(LOG_OFFSET), dtype=np.float32)
        return log_mel

    def patches(self, waveform: FloatArray, *, pad: bool = True) -> FloatArray:
        """(patches, 96, 64) model inputs for a whole waveform.

        With `pad`, silence is appended as YAMNet's `pad_waveform` does: up to
        one full patch for a short sound, then up to a whole number of patch
        hops, so the tail of a sound still lands in a patch.
        """
        if pad:
            waveform = pad_to_whole_patches(waveform)
        return frame_into_patches(self.log_mel_spectrogram(waveform))


def pad_to_whole_patches(waveform: FloatArray) -> FloatArray:
    """Zero-pad so the waveform holds at least one patch and a whole number of hops."""
    length = max(len(waveform), PATCH_SAMPLES)
    hops_after_first = -(-(length - PATCH_SAMPLES) // PATCH_HOP_SAMPLES)  # ceil
    target = PATCH_SAMPLES + hops_after_first * PATCH_HOP_SAMPLES
    if target == len(waveform):
        return waveform
    return np.pad(waveform, (0, target - len(waveform)))


def frame_into_patches(log_mel: FloatArray) -> FloatArray:
    """(frames, 64) -> (patches, 96, 64); only complete patches."""
    if log_mel.shape[0] < PATCH_FRAMES:
        return np.zeros((0, PATCH_FRAMES, log_mel.shape[1]), dtype=np.float32)
    # sliding_window_view puts the window axis last: move it back to frames.
    windows = sliding_window_view(log_mel, PATCH_FRAMES, axis=0)[::PATCH_HOP_FRAMES]
    return np.ascontiguousarray(windows.transpose(0, 2, 1))


@dataclass(frozen=True)
class PatchBatch:
    """Patches cut from a stream; `first_index` numbers them from the stream's start."""

    first_index: int
    patches: FloatArray

    def start_seconds(self, offset: int) -> float:
        """Where patch `first_index + offset` starts, in seconds of stream."""
        return (self.first_index + offset) * PATCH_HOP_SECONDS


class PatchStream:
    """Cuts patches from consecutive chunks of one stream, across chunk borders.

    Holds back fewer than PATCH_SAMPLES samples between calls (what the next
    patch still needs), so its memory is bounded by one patch plus the
    largest chunk pushed.
    """

    def __init__(self, front_end: FrontEnd) -> None:
        self._front_end = front_end
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_index = 0

    def push(self, chunk: FloatArray) -> PatchBatch:
        samples = np.concatenate([self._pending, chunk.astype(np.float32, copy=False)])
        first_index = self._next_index
        if len(samples) < PATCH_SAMPLES:
            self._pending = samples
            return PatchBatch(first_index, np.zeros((0, PATCH_FRAMES, MEL_BANDS), np.float32))
        count = 1 + (len(samples) - PATCH_SAMPLES) // PATCH_HOP_SAMPLES
        used = (count - 1) * PATCH_HOP_SAMPLES + PATCH_SAMPLES
        patches = self._front_end.patches(samples[:used], pad=False)
        self._pending = samples[count * PATCH_HOP_SAMPLES :].copy()
        self._next_index += count
        return PatchBatch(first_index, patches)

    def reset(self) -> None:
        """Forget held-back samples, e.g. after a gap in the stream."""
        self._pending = np.zeros(0, dtype=np.float32)
