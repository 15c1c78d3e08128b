"""The pure parts of audio-capture and audio-classifier's stages: playlists,
chunk checks, the bounded backlog, and one mic's stream through the real YAMNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.audio_capture.pcm import load_pcm16, split_into_chunks
from services.audio_capture.playlist import build_program, program_chunks
from services.audio_capture.settings import AudioCaptureSettings
from services.audio_classifier.chunks import Chunk, ChunkBacklog, parse_chunk
from services.audio_classifier.frontend import PATCH_HOP_SECONDS
from services.audio_classifier.mic_stream import MicStream
from services.audio_classifier.settings import (
    AudioClassifierConfig,
    config_model_for,
    default_classes_of_interest,
)
from services.audio_classifier.sound_events import DEFAULT_CLASSES_OF_INTEREST
from services.audio_classifier.yamnet import YamnetClassifier
from services.media.pcm_chunk import BadChunkError
from tests.harness.assets import AUDIO_DIR, load_yamnet

GOOD = {"seq": "3", "capture_ts": "1000.5", "sample_rate": "16000", "channels": "1"}


@pytest.fixture(scope="module")
def classifier() -> YamnetClassifier:
    return load_yamnet()


def _chunk(mic: str, seq: int, seconds: float = 0.5, ts: float = 0.0) -> Chunk:
    return Chunk(mic, seq, ts, np.zeros(round(seconds * 16_000), dtype=np.int16))


# ---- playlists ---------------------------------------------------------------


def test_a_looping_program_wraps_mid_chunk_without_a_seam() -> None:
    program = np.arange(1, 10_001, dtype=np.int16)  # 0.625 s
    chunks = program_chunks(program, 0.5, loop=True)
    first, second, third = next(chunks), next(chunks), next(chunks)
    assert len(first) == len(second) == len(third) == 8000
    joined = np.concatenate([first, second, third])
    assert np.array_equal(joined, np.resize(program, 24_000))


def test_a_finite_program_pads_its_last_chunk_with_silence() -> None:
    program = build_program([np.ones(10_000, np.int16), np.full(3000, 2, np.int16)], 0.25)
    assert len(program) == 10_000 + 4000 + 3000 + 4000
    chunks = list(program_chunks(program, 0.5, loop=False))
    assert len(chunks) == 3 and all(len(c) == 8000 for c in chunks)
    assert not chunks[-1][5000:].any()


def test_capture_settings_want_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        AudioCaptureSettings()
    with pytest.raises(ValueError, match="no such file"):
        AudioCaptureSettings(audio_files=str(tmp_path / "missing.wav"))
    sound = tmp_path / "a.wav"
    sound.write_bytes(b"")
    with pytest.raises(ValueError, match="exactly one"):
        AudioCaptureSettings(audio_files=str(sound), alsa_device="default")
    settings = AudioCaptureSettings(audio_files=f"{sound}, {sound}")
    assert settings.file_paths() == [sound, sound]


# ---- received chunks ---------------------------------------------------------


def test_a_good_chunk_is_parsed() -> None:
    chunk = parse_chunk("desk", b"\x01\x00\xff\xff", GOOD)
    assert (chunk.mic, chunk.seq, chunk.capture_ts) == ("desk", 3, 1000.5)
    assert chunk.samples.tolist() == [1, -1]


@pytest.mark.parametrize(
    ("payload", "properties", "reason"),
    [
        (b"\x00" * 3, GOOD, "odd"),
        (b"\x00" * 4, {**GOOD, "sample_rate": "44100"}, "44100"),
        (b"\x00" * 4, {**GOOD, "channels": "2"}, "2 channels"),
        (b"\x00" * 4, {k: v for k, v in GOOD.items() if k != "seq"}, "missing"),
        (b"\x00" * 4, {**GOOD, "seq": "-1"}, "negative"),
        (b"\x00" * 4, {**GOOD, "seq": "x"}, "integer"),
        (b"\x00" * 4, {**GOOD, "capture_ts": "nan"}, "not a time"),
        (b"\x00" * 4, {**GOOD, "capture_ts": "yesterday"}, "not a number"),
        (b"", GOOD, "empty"),
    ],
)
def test_a_bad_chunk_says_why(payload: bytes, properties: dict[str, str], reason: str) -> None:
    with pytest.raises(BadChunkError, match=reason):
        parse_chunk("desk", payload, properties)


@given(
    bound_s=st.floats(min_value=0.1, max_value=3.0),
    arrivals=st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60),
)
def test_the_backlog_stays_within_its_bound_per_mic_and_keeps_order(
    bound_s: float, arrivals: list[tuple[str, bool]]
) -> None:
    backlog = ChunkBacklog(bound_s)
    seq = dict.fromkeys("abc", 0)
    taken: dict[str, list[int]] = {mic: [] for mic in "abc"}
    for mic, take in arrivals:
        backlog.offer(_chunk(mic, seq[mic], seconds=0.25))
        seq[mic] += 1
        if take and (chunk := backlog.take()) is not None:
            taken[chunk.mic].append(chunk.seq)
    while (chunk := backlog.take()) is not None:
        taken[chunk.mic].append(chunk.seq)
    for mic in "abc":
        assert taken[mic] == sorted(taken[mic])  # never out of order
        if seq[mic]:
            assert taken[mic][-1] == seq[mic] - 1  # the newest always survives
    assert sum(map(len, taken.values())) + backlog.dropped == sum(seq.values())


def test_the_backlog_serves_mics_in_turn() -> None:
    backlog = ChunkBacklog(10.0)
    for seq in range(3):
        backlog.offer(_chunk("a", seq))
    backlog.offer(_chunk("b", 0))
    order = [(c.mic, c.seq) for c in iter(backlog.take, None)]
    assert order == [("a", 0), ("b", 0), ("a", 1), ("a", 2)]


# ---- runtime config ----------------------------------------------------------


def test_default_classes_of_interest_round_trip_the_pure_defaults() -> None:
    families = [c.family(label) for label, c in default_classes_of_interest().items()]
    assert families == list(DEFAULT_CLASSES_OF_INTEREST)


def test_config_refuses_classes_the_model_lacks_and_bad_hysteresis(
    classifier: YamnetClassifier,
) -> None:
    model = config_model_for(classifier.class_names)
    with pytest.raises(ValueError, match="Glas"):
        model.model_validate({"classes_of_interest": {"glass": {"class_names": ["Glas"]}}})
    with pytest.raises(ValueError, match="exit_score"):
        model.model_validate(
            {
                "classes_of_interest": {
                    "glass": {"class_names": ["Glass"], "enter_score": 0.3, "exit_score": 0.5}
                }
            }
        )
    assert isinstance(model.model_validate({}), AudioClassifierConfig)


# ---- one mic's stream ----------------------------------------------------------


def _stream(classifier: YamnetClassifier) -> MicStream:
    return MicStream("desk", classifier, DEFAULT_CLASSES_OF_INTEREST, update_every_patches=10)


def test_chunked_audio_gives_the_patches_of_the_whole_sound(classifier: YamnetClassifier) -> None:
    speech = load_pcm16(AUDIO_DIR / "Front_Left.wav")
    stream = _stream(classifier)
    classes = []
    for seq, samples in enumerate(split_into_chunks(speech, 0.3)):
        analysis = stream.analyse(Chunk("desk", seq, 500.0 + seq * 0.3, samples), top_k=3)
        assert not analysis.gap
        classes.extend(analysis.classes)
    whole = classifier.front_end.patches(
        speech.astype(np.float32) / 32768.0, pad=False
    )  # the same patches, cut from the whole recording at once
    assert len(classes) == len(whole) >= 2
    assert [c.patch_index for c in classes] == list(range(len(classes)))
    assert classes[1].start_ts == pytest.approx(500.0 + PATCH_HOP_SECONDS)
    assert all(c.top[0].name == "Speech" for c in classes)


def test_a_gap_in_seq_restarts_the_patches_at_the_new_chunks_time(
    classifier: YamnetClassifier,
) -> None:
    stream = _stream(classifier)
    first = stream.analyse(_chunk("desk", 0, seconds=1.0, ts=100.0), top_k=1)
    assert [c.patch_index for c in first.classes] == [0]
    # seq 1 was lost: the next chunk starts a new cut, timed by its own capture_ts.
    later = stream.analyse(_chunk("desk", 2, seconds=1.0, ts=200.0), top_k=1)
    assert later.gap
    assert [(c.patch_index, c.start_ts) for c in later.classes] == [(1, 200.0)]


def test_an_alarm_clock_event_is_numbered_new_to_end(classifier: YamnetClassifier) -> None:
    alarm = load_pcm16(AUDIO_DIR / "alarm-clock-elapsed.wav")
    stream = _stream(classifier)
    events = []
    for seq, samples in enumerate(split_into_chunks(alarm, 0.5)):
        events.extend(stream.analyse(Chunk("desk", seq, 10.0 + seq * 0.5, samples), 3).events)
    events.extend(stream.close())
    alarm_events = [e for e in events if e.label == "alarm"]
    assert alarm_events[0].type == "new" and alarm_events[-1].type == "end"
    (event_id,) = {e.event_id for e in alarm_events}
    assert [e.id for e in alarm_events] == [
        f"{event_id}.{n}" for n in range(1, len(alarm_events) + 1)
    ]
    last_end = alarm_events[-1].end_ts
    assert last_end is not None
    assert 10.0 <= alarm_events[0].start_ts < last_end
    assert all(e.mic == "desk" and e.end_ts is None for e in alarm_events[:-1])
    assert stream.open_labels == ()
