"""The numpy log-mel front end against an independent reference.

Reference: scipy.signal.stft (its periodic Hann window, 400-sample frames,
160-sample hop, 512-point FFT, un-scaled back to plain magnitudes) and a mel
matrix built by explicit loops from the HTK formula written as
2595·log10(1 + f/700). Tolerance: 1e-4 in log-mel units (natural log), i.e.
0.01 % relative on the mel energies; what remains is float32 vs float64
rounding (measured ~3e-6).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from services.audio_classifier.frontend import (
    MEL_BANDS,
    PATCH_FRAMES,
    PATCH_HOP_FRAMES,
    PATCH_HOP_SAMPLES,
    PATCH_SAMPLES,
    FrontEnd,
    PatchStream,
    mel_weight_matrix,
    pad_to_whole_patches,
    periodic_hann,
)

LOG_MEL_TOLERANCE = 1e-4
SAMPLE_RATE = 16_000


def _test_signal(samples: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """A chirp across the whole mel range plus white noise: every band gets energy."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SAMPLE_RATE
    sweep = 0.3 * signal.chirp(t, f0=60, t1=max(samples, 1) / SAMPLE_RATE, f1=7900)
    mixed: npt.NDArray[np.float32] = (sweep + 0.05 * rng.standard_normal(samples)).astype(
        np.float32
    )
    return mixed


def _reference_mel_matrix() -> npt.NDArray[np.float64]:
    def mel(hz: float) -> float:
        return 2595.0 * float(np.log10(1.0 + hz / 700.0))

    edges = np.linspace(mel(125.0), mel(7500.0), MEL_BANDS + 2)
    weights = np.zeros((257, MEL_BANDS))
    for fft_bin in range(1, 257):  # DC carries no weight
        bin_mel = mel(fft_bin * 8000.0 / 256)
        for band in range(MEL_BANDS):
            low, centre, high = edges[band : band + 3]
            if low < bin_mel <= centre:
                weights[fft_bin, band] = (bin_mel - low) / (centre - low)
            elif centre < bin_mel < high:
                weights[fft_bin, band] = (high - bin_mel) / (high - centre)
    return weights


def _reference_log_mel(waveform: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    window = signal.get_window("hann", 400)  # periodic: scipy's default for spectra
    _, _, spectrum = signal.stft(
        waveform.astype(np.float64),
        fs=SAMPLE_RATE,
        window=window,
        nperseg=400,
        noverlap=400 - 160,
        nfft=512,
        boundary=None,
        padded=False,
        detrend=False,
    )
    # scipy scales the STFT by 1/sum(window); YAMNet uses plain magnitudes.
    magnitude = np.abs(spectrum).T * window.sum()
    log_mel: npt.NDArray[np.float64] = np.log(magnitude @ _reference_mel_matrix() + 0.001)
    return log_mel


def test_window_is_periodic_hann() -> None:
    np.testing.assert_allclose(periodic_hann(400), signal.get_window("hann", 400), atol=1e-7)
    assert periodic_hann(400)[0] == 0.0
    assert periodic_hann(400)[-1] != 0.0  # periodic, not symmetric


def test_mel_matrix_matches_loop_reference() -> None:
    weights = mel_weight_matrix()
    assert weights.shape == (257, MEL_BANDS)
    np.testing.assert_allclose(weights, _reference_mel_matrix(), atol=1e-6)
    assert not weights[0].any()
    # 125-7500 Hz: bins below and above carry no weight (31.25 Hz per bin).
    assert not weights[: int(125 / 31.25)].any()
    assert not weights[int(7500 / 31.25) + 1 :].any()


def test_log_mel_matches_scipy_stft_reference() -> None:
    waveform = _test_signal(3 * SAMPLE_RATE)
    log_mel = FrontEnd.create().log_mel_spectrogram(waveform)
    reference = _reference_log_mel(waveform)
    assert log_mel.shape == reference.shape == (1 + (len(waveform) - 400) // 160, MEL_BANDS)
    assert log_mel.dtype == np.float32
    np.testing.assert_allclose(log_mel, reference, atol=LOG_MEL_TOLERANCE, rtol=0)


def test_silence_gives_the_log_offset_floor() -> None:
    log_mel = FrontEnd.create().log_mel_spectrogram(np.zeros(16_000, dtype=np.float32))
    np.testing.assert_allclose(log_mel, np.log(0.001), rtol=1e-6)


@pytest.mark.parametrize(
    ("samples", "expected_patches"),
    [
        (1, 1),  # shorter than a patch: padded up to one
        (PATCH_SAMPLES - 1, 1),
        (PATCH_SAMPLES, 1),
        (PATCH_SAMPLES + 1, 2),  # any sample past a patch rounds up to one more hop
        (PATCH_SAMPLES + PATCH_HOP_SAMPLES, 2),
        (PATCH_SAMPLES + PATCH_HOP_SAMPLES + 1, 3),
        (16_000 * 10, 20),  # 10 s: ceil((160000 - 15600) / 7680) + 1
    ],
)
def test_patch_count_follows_yamnet_padding(samples: int, expected_patches: int) -> None:
    patches = FrontEnd.create().patches(_test_signal(samples))
    assert patches.shape == (expected_patches, PATCH_FRAMES, MEL_BANDS)
    padded = pad_to_whole_patches(np.zeros(samples, dtype=np.float32))
    assert (len(padded) - PATCH_SAMPLES) % PATCH_HOP_SAMPLES == 0


def test_patches_are_hopped_slices_of_the_spectrogram() -> None:
    front_end = FrontEnd.create()
    waveform = _test_signal(4 * SAMPLE_RATE, seed=1)
    log_mel = front_end.log_mel_spectrogram(waveform)
    patches = front_end.patches(waveform, pad=False)
    assert len(patches) == 1 + (len(log_mel) - PATCH_FRAMES) // PATCH_HOP_FRAMES
    for index, patch in enumerate(patches):
        start = index * PATCH_HOP_FRAMES
        np.testing.assert_array_equal(patch, log_mel[start : start + PATCH_FRAMES])


def test_too_short_for_a_patch_without_padding_gives_none() -> None:
    patches = FrontEnd.create().patches(_test_signal(SAMPLE_RATE // 2), pad=False)
    assert patches.shape == (0, PATCH_FRAMES, MEL_BANDS)


@settings(max_examples=25, deadline=None)
@given(chunk_sizes=st.lists(st.integers(min_value=1, max_value=12_000), min_size=1, max_size=12))
def test_stream_cuts_the_same_patches_as_the_whole_waveform(chunk_sizes: list[int]) -> None:
    front_end = FrontEnd.create()
    waveform = _test_signal(sum(chunk_sizes), seed=2)
    stream = PatchStream(front_end)
    collected: list[npt.NDArray[np.float32]] = []
    position = 0
    for size in chunk_sizes:
        batch = stream.push(waveform[position : position + size])
        position += size
        assert batch.first_index == sum(p.shape[0] for p in collected)
        collected.append(batch.patches)
    streamed = np.concatenate(collected)
    whole = front_end.patches(waveform, pad=False)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
