"""Reading, resampling, chunking and validating PCM16 mono 16 kHz audio."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.io import wavfile

from services.audio_capture.pcm import (
    AudioFileError,
    load_pcm16,
    read_audio_file,
    resample,
    samples_per_chunk,
    split_into_chunks,
    to_mono,
)
from services.media.pcm_chunk import (
    SAMPLE_RATE_HZ,
    BadChunkError,
    float_to_pcm16,
    pcm16_to_float,
    validate_chunk,
)


def _tone(
    frequency_hz: float, rate_hz: int, seconds: float, amplitude: float = 0.5
) -> npt.NDArray[np.float32]:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def _peak_frequency(samples: npt.NDArray[np.float32], rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate_hz)[np.argmax(spectrum)])


def _rms(samples: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


# ---- resampling --------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [8_000, 22_050, 44_100, 48_000, 96_000])
def test_resampling_keeps_pitch_length_and_level(rate_hz: int) -> None:
    tone = _tone(1000.0, rate_hz, 1.0)
    resampled = resample(tone, rate_hz)
    assert resampled.dtype == np.float32
    assert abs(len(resampled) - SAMPLE_RATE_HZ) <= 1
    assert _peak_frequency(resampled, SAMPLE_RATE_HZ) == pytest.approx(1000.0, abs=2.0)
    # Ignore the filter's edges; the body keeps the tone's level within 1 %.
    body = resampled[800:-800]
    assert _rms(body) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resampling_filters_what_would_alias() -> None:
    # 11 kHz is above the 8 kHz Nyquist of the output: without an anti-alias
    # filter it would fold back to 5 kHz at full level.
    resampled = resample(_tone(11_000.0, 48_000, 1.0), 48_000)
    assert _rms(resampled[800:-800]) < 0.01 * 0.5


def test_resampling_at_the_target_rate_is_identity() -> None:
    tone = _tone(440.0, SAMPLE_RATE_HZ, 0.1)
    np.testing.assert_array_equal(resample(tone, SAMPLE_RATE_HZ), tone)


def test_resampling_refuses_a_zero_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10, dtype=np.float32), 0)


def test_to_mono_averages_channels() -> None:
    stereo = np.stack([np.full(4, 0.5), np.full(4, -0.1)], axis=1).astype(np.float32)
    np.testing.assert_allclose(to_mono(stereo), np.full(4, 0.2), atol=1e-7)


def test_pcm16_conversion_clips_instead_of_wrapping() -> None:
    pcm = float_to_pcm16(np.array([-1.5, -1.0, 0.0, 0.5, 0.99999, 1.5], dtype=np.float32))
    assert pcm.tolist() == [-32768, -32768, 0, 16384, 32767, 32767]
    np.testing.assert_allclose(pcm16_to_float(pcm)[2:4], [0.0, 0.5])


# ---- files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "full_scale"),
    [(np.int16, 32767), (np.int32, 2**31 - 1), (np.float32, 1.0)],
)
def test_wav_files_of_any_sample_type_read_as_float(
    tmp_path: Path, dtype: type[np.generic], full_scale: float
) -> None:
    tone = _tone(440.0, 22_050, 0.2, amplitude=0.5)
    path = tmp_path / "tone.wav"
    wavfile.write(path, 22_050, (tone * full_scale).astype(dtype))
    recording = read_audio_file(path)
    assert recording.sample_rate_hz == 22_050
    assert recording.samples.shape == (len(tone), 1)
    np.testing.assert_allclose(recording.samples[:, 0], tone, atol=1e-4)
    assert recording.duration_s == pytest.approx(0.2, abs=1e-3)


def test_stereo_44k_file_becomes_16k_mono_pcm16(tmp_path: Path) -> None:
    left, right = _tone(500.0, 44_100, 0.5), _tone(500.0, 44_100, 0.5)
    path = tmp_path / "stereo.wav"
    wavfile.write(path, 44_100, float_to_pcm16(np.stack([left, right], axis=1)))
    pcm = load_pcm16(path)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 8_000) <= 1
    assert _peak_frequency(pcm16_to_float(pcm), SAMPLE_RATE_HZ) == pytest.approx(500.0, abs=2.0)


def test_missing_and_corrupt_files_raise_audio_file_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="no such file"):
        read_audio_file(tmp_path / "absent.wav")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AudioFileError, match="not a readable WAV"):
        read_audio_file(corrupt)


def test_ogg_vorbis_is_decoded_with_a_debian_tool(tmp_path: Path) -> None:
    encoder = shutil.which("oggenc")
    if encoder is None:
        pytest.fail("oggenc is missing: apt-get install vorbis-tools (it also provides oggdec)")
    source = tmp_path / "tone.wav"
    wavfile.write(source, 48_000, float_to_pcm16(_tone(1000.0, 48_000, 1.0)))
    encoded = tmp_path / "tone.ogg"
    subprocess.run([encoder, "--quiet", "-o", str(encoded), str(source)], check=True)
    pcm = load_pcm16(encoded)
    assert abs(len(pcm) - SAMPLE_RATE_HZ) <= 1
    assert _peak_frequency(pcm16_to_float(pcm), SAMPLE_RATE_HZ) == pytest.approx(1000.0, abs=2.0)


def test_ogg_without_a_decoder_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sound.oga"
    path.write_bytes(b"OggS")
    monkeypatch.setenv("PATH", str(tmp_path))  # no decoder on it
    with pytest.raises(AudioFileError, match="vorbis-tools"):
        read_audio_file(path)


# ---- chunking ----------------------------------------------------------------


def test_chunks_have_a_fixed_duration_and_the_tail_is_padded() -> None:
    pcm = np.arange(1, 16_000 * 2 + 4_001, dtype=np.int16)  # 2.25 s at 16 kHz
    chunks = list(split_into_chunks(pcm, 0.5))
    assert [len(c) for c in chunks] == [8_000] * 5
    np.testing.assert_array_equal(chunks[4][:4_000], pcm[32_000:])
    assert not chunks[4][4_000:].any()
    assert len(list(split_into_chunks(pcm, 0.5, pad_last=False))) == 4


@settings(max_examples=50, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=50_000),
    chunk_ms=st.integers(min_value=10, max_value=2_000),
)
def test_chunks_rebuild_the_signal(length: int, chunk_ms: int) -> None:
    pcm = np.random.default_rng(length).integers(-32768, 32767, length, dtype=np.int16)
    chunks = list(split_into_chunks(pcm, chunk_ms / 1000))
    size = samples_per_chunk(chunk_ms / 1000)
    assert all(len(c) == size for c in chunks)
    assert len(chunks) == -(-length // size)
    rebuilt = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    np.testing.assert_array_equal(rebuilt[:length], pcm)
    assert not rebuilt[length:].any()


def test_a_chunk_duration_without_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="no sample"):
        list(split_into_chunks(np.zeros(10, dtype=np.int16), 0.00001))


# ---- validating a received chunk --------------------------------------------


def test_a_valid_chunk_decodes_little_endian_samples() -> None:
    samples = np.array([0, 1, -1, 32767, -32768], dtype="<i2")
    decoded = validate_chunk(samples.tobytes(), sample_rate_hz=16_000, channels=1)
    assert decoded.dtype == np.int16
    assert decoded.tolist() == [0, 1, -1, 32767, -32768]


@pytest.mark.parametrize(
    ("payload", "rate", "channels", "reason"),
    [
        (b"\x00\x01\x02", 16_000, 1, "odd"),
        (b"", 16_000, 1, "empty"),
        (b"\x00\x00", 44_100, 1, "44100 Hz"),
        (b"\x00\x00", None, 1, "no sample rate"),
        (b"\x00\x00", 16_000, 2, "2 channels"),
        (b"\x00\x00" * (16_000 * 10 + 1), 16_000, 1, "exceeds"),
    ],
)
def test_bad_chunks_are_refused_with_a_reason(
    payload: bytes, rate: int | None, channels: int, reason: str
) -> None:
    with pytest.raises(BadChunkError) as caught:
        validate_chunk(payload, sample_rate_hz=rate, channels=channels)
    assert reason in caught.value.reason


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(max_size=4_000), rate=st.one_of(st.none(), st.integers(0, 200_000)))
def test_any_payload_is_either_accepted_whole_or_refused(payload: bytes, rate: int | None) -> None:
    try:
        decoded = validate_chunk(payload, sample_rate_hz=rate)
    except BadChunkError as error:
        assert error.reason
    else:
        assert rate == SAMPLE_RATE_HZ
        assert len(decoded) * 2 == len(payload)
