"""audio-capture -> real broker -> audio-classifier (real YAMNet), as processes.

Real sounds from Debian packages (tools/fetch_audio_assets.sh) are replayed by
audio-capture at a few times real speed, one mic per sound, into one
classifier; the AudioSet families are the ones the unit tests established
(tests/unit/test_audio_classifier.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from services.audio_capture.pcm import load_pcm16, split_into_chunks, write_wav_pcm16
from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StageProcess, StartStage
from tests.integration.audio_helpers import (
    AUDIO_DIR,
    BELL_FAMILY,
    TELEPHONE_FAMILY,
    chunk_properties,
    classes_of,
    events_of,
    require,
)

REPLAY_SPEED = "5"
SILENCE_AFTER_S = "1.5"  # lets the tail of a sound fill a patch and its event end


def _online(observer: Probe, root: str, stage_name: str) -> None:
    observer.wait_for(
        lambda m: m.topic == f"{root}/status/{stage_name}" and m.payload == b"online",
        timeout_s=20,
    )


def _observe(probe: MakeProbe, root: str) -> Probe:
    observer = probe("operator")
    for pattern in ("audio/+/classes", "event/+", "status/#", "deadletter/+"):
        observer.subscribe(f"{root}/{pattern}")
    return observer


def _replay(stage: StartStage, mic: str, *files: Path, **extra: str) -> StageProcess:
    return stage(
        "audio-capture",
        EDGEGW_MIC=mic,
        EDGEGW_AUDIO_FILES=",".join(str(require(f)) for f in files),
        EDGEGW_LOOP="false",
        EDGEGW_SPEED=REPLAY_SPEED,
        EDGEGW_SILENCE_BETWEEN_S=SILENCE_AFTER_S,
        **extra,
    )


def test_real_sounds_are_classified_and_only_the_alarm_raises_an_event(
    stage: StartStage, probe: MakeProbe, root: str, tmp_path: Path
) -> None:
    observer = _observe(probe, root)
    # The chunks themselves, seen as the classifier sees them.
    listener = probe("audio-classifier")
    listener.subscribe(f"{root}/audio/speech/chunk", qos=0)
    classifier = stage("audio-classifier", EDGEGW_SILENT_AFTER_S="2", EDGEGW_MAX_PENDING_S="30")
    _online(observer, root, "audio-classifier")
    silence = tmp_path / "silence.wav"
    write_wav_pcm16(silence, np.zeros(3 * 16_000, dtype=np.int16))
    sounds = {
        "speech": [AUDIO_DIR / "Front_Center.wav", AUDIO_DIR / "Front_Left.wav"],
        "phone": [AUDIO_DIR / "phone-incoming-call.wav"],
        "alarm": [AUDIO_DIR / "alarm-clock-elapsed.wav"],
        "bell": [AUDIO_DIR / "complete.wav"],
        "noise": [AUDIO_DIR / "Noise.wav"],
        "silence": [silence],
    }
    captures = {mic: _replay(stage, mic, *files) for mic, files in sounds.items()}
    for mic, capture in captures.items():
        assert capture.wait(60) == 0, (mic, capture.output()[-2000:])

    # The alarm's event ends once the alarm clock stops (or its mic falls silent).
    observer.wait_for(
        lambda m: m.topic == f"{root}/event/alarm" and m.json()["type"] == "end", timeout_s=15
    )
    events = events_of(observer, root, "alarm")
    # Its beeps also score as a smoke detector, as in the unit tests.
    assert {e["label"] for e in events} <= {"alarm", "smoke_alarm"}
    assert {e["kind"] for e in events} == {"sound"}
    alarm_events = [e for e in events if e["label"] == "alarm"]
    assert alarm_events[0]["type"] == "new"
    assert alarm_events[-1]["type"] == "end"
    (event_id,) = {e["event_id"] for e in alarm_events}
    assert [e["id"] for e in alarm_events] == [
        f"{event_id}.{n}" for n in range(1, len(alarm_events) + 1)
    ]
    assert alarm_events[0]["start_ts"] <= alarm_events[-1]["end_ts"]

    speech = classes_of(observer, root, "speech")
    heard = [patch for patch in speech if patch["top"][0]["name"] != "Silence"]
    assert heard, speech
    assert all(patch["top"][0]["name"] == "Speech" for patch in heard), heard
    assert max(patch["top"][0]["score"] for patch in heard) >= 0.9
    indexes = [patch["patch_index"] for patch in speech]
    assert indexes == list(range(len(indexes)))

    phone = [p for p in classes_of(observer, root, "phone") if p["top"][0]["name"] != "Silence"]
    assert phone and all(p["top"][0]["name"] in TELEPHONE_FAMILY for p in phone), phone
    bells = classes_of(observer, root, "bell")
    bell = max(bells, key=lambda p: p["top"][0]["score"] if p["top"][0]["name"] != "Silence" else 0)
    assert bell["top"][0]["name"] in BELL_FAMILY and bell["top"][0]["score"] >= 0.8, [
        (p["patch_index"], p["top"][0]) for p in bells
    ]

    # Silence and noise were classified (so "no event" is not vacuous) and raised nothing.
    assert all(p["top"][0]["name"] == "Silence" for p in classes_of(observer, root, "silence"))
    assert classes_of(observer, root, "noise")
    for quiet in ("silence", "noise", "speech", "phone", "bell"):
        assert events_of(observer, root, quiet) == [], quiet

    # Chunks on the wire: PCM16 mono 16 kHz, numbered, with their capture time.
    chunks = listener.received()
    assert [int(c.properties["seq"]) for c in chunks] == list(range(len(chunks)))
    assert all(c.properties["sample_rate"] == "16000" for c in chunks)
    assert all(c.properties["channels"] == "1" for c in chunks)
    assert {len(c.payload) for c in chunks} == {16_000}  # 0.5 s of 2-byte samples
    stamps = [float(c.properties["capture_ts"]) for c in chunks]
    assert np.allclose(np.diff(stamps), 0.5)
    assert classifier.poll() is None


def test_bad_chunks_are_dead_lettered_and_the_classifier_keeps_going(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _observe(probe, root)
    classifier = stage("audio-classifier")
    _online(observer, root, "audio-classifier")
    source = probe("audio-capture")
    topic = f"{root}/audio/desk/chunk"
    good = chunk_properties(seq=0)
    bad = {
        "odd length": (b"\x00" * 1001, good, "odd"),
        "wrong rate": (b"\x00" * 1000, {**good, "sample_rate": "8000"}, "8000"),
        "stereo": (b"\x00" * 1000, {**good, "channels": "2"}, "channels"),
        "no properties": (b"\x00" * 1000, {}, "missing"),
        "no rate": (b"\x00" * 1000, {k: v for k, v in good.items() if k != "sample_rate"}, "rate"),
        "bad seq": (b"\x00" * 1000, {**good, "seq": "first"}, "seq"),
        "empty": (b"", good, "empty"),
    }
    for payload, properties, _ in bad.values():
        source.publish(topic, payload, qos=0, user_properties=properties)
    letters = observer.wait_for(
        lambda m: m.topic == f"{root}/deadletter/audio-classifier", count=len(bad)
    )
    reasons = sorted(letter.json()["reason"] for letter in letters)
    for name, (_, _, word) in bad.items():
        assert any(word in reason for reason in reasons), (name, reasons)
    assert all(letter.json()["topic"] == topic for letter in letters)

    speech = load_pcm16(require(AUDIO_DIR / "Front_Center.wav"))
    for seq, chunk in enumerate(split_into_chunks(speech, 0.5)):
        source.publish(
            topic, chunk.astype("<i2").tobytes(), qos=0, user_properties=chunk_properties(seq)
        )
    first = observer.wait_for(lambda m: m.topic == f"{root}/audio/desk/classes")[0].json()
    assert first["top"][0]["name"] == "Speech"
    assert classifier.poll() is None


def test_classes_of_interest_come_from_the_retained_config(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = _observe(probe, root)
    operator = probe("operator")
    config_topic = f"{root}/config/audio-classifier"
    state_topic = f"{root}/status/audio-classifier/config"
    telephone: dict[str, Any] = {
        "class_names": ["Telephone", "Telephone bell ringing", "Ringtone"],
        "enter_score": 0.7,
        "exit_score": 0.4,
    }
    operator.publish(
        config_topic, {"classes_of_interest": {"telephone": telephone}, "top_k": 2}, retain=True
    )
    classifier = stage("audio-classifier", EDGEGW_SILENT_AFTER_S="2")
    state = observer.wait_for(lambda m: m.topic == state_topic, timeout_s=20)[-1].json()
    assert state["status"] == "accepted", state
    _online(observer, root, "audio-classifier")
    _replay(stage, "hall", AUDIO_DIR / "phone-incoming-call.wav")
    observer.wait_for(
        lambda m: m.topic == f"{root}/event/hall" and m.json()["type"] == "end", timeout_s=20
    )
    events = events_of(observer, root, "hall")
    assert events[0]["type"] == "new"
    assert {e["label"] for e in events} == {"telephone"}
    assert events[0]["top_class"] in telephone["class_names"]
    assert all(len(p["top"]) == 2 for p in classes_of(observer, root, "hall"))

    # A class the model does not know is refused, naming the field; the config stays.
    observer.clear()
    wrong = {"classes_of_interest": {"glass": {"class_names": ["Glas"]}}}
    operator.publish(config_topic, orjson.dumps(wrong), retain=True)
    state = observer.wait_for(lambda m: m.topic == state_topic)[-1].json()
    assert state["status"] == "rejected"
    assert state["errors"][0]["field"] == "classes_of_interest"
    assert "Glas" in state["errors"][0]["reason"]
    assert "telephone" in state["applied"]["classes_of_interest"]
    operator.publish(config_topic, b"", retain=True)
    assert classifier.poll() is None


def test_an_alsa_device_is_read_through_arecord(
    stage: StartStage, probe: MakeProbe, root: str, tmp_path: Path
) -> None:
    """A real ALSA capture device with no sound card: the `file` plugin plays a
    recording into the capture stream (`infile`), so arecord reads speech."""
    recording = tmp_path / "speech.raw"
    speech = load_pcm16(require(AUDIO_DIR / "Front_Center.wav"))
    padded = np.concatenate([speech, np.zeros(16_000, dtype=np.int16)])
    recording.write_bytes(padded.astype("<i2").tobytes())
    # ALSA reads ~/.asoundrc: the stage gets a home of its own holding the device.
    (tmp_path / ".asoundrc").write_text(
        "pcm.speechfile {\n"
        "  type file\n"
        '  slave.pcm "null"\n'
        '  file "/dev/null"\n'
        f'  infile "{recording}"\n'
        '  format "raw"\n'
        "}\n"
    )
    observer = _observe(probe, root)
    stage("audio-classifier", EDGEGW_MAX_PENDING_S="30")
    _online(observer, root, "audio-classifier")
    capture = stage(
        "audio-capture",
        HOME=str(tmp_path),
        EDGEGW_MIC="room",
        EDGEGW_ALSA_DEVICE="speechfile",
        EDGEGW_MAX_CHUNKS="5",  # 2.5 s: the recording and some of its silence
    )
    assert capture.wait(30) == 0, capture.output()[-2000:]
    first = observer.wait_for(lambda m: m.topic == f"{root}/audio/room/classes")[0].json()
    assert first["top"][0]["name"] == "Speech", first["top"]
    assert events_of(observer, root, "room") == []


def test_a_flood_of_chunks_is_shed_not_queued(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    """Audio replayed as fast as it can be sent: the classifier drops the oldest
    chunks beyond its bounds (counted) and is done soon after the flood ends."""
    observer = _observe(probe, root)
    observer.subscribe(f"{root}/metrics/audio-classifier", qos=0)
    classifier = stage(
        "audio-classifier",
        EDGEGW_MAX_PENDING_S="1",
        EDGEGW_MAX_QUEUED_QOS0="8",
        EDGEGW_HEALTH_INTERVAL_S="0.5",
    )
    _online(observer, root, "audio-classifier")
    sent = 1500  # 750 s of audio
    capture = stage(
        "audio-capture",
        EDGEGW_MIC="flood",
        EDGEGW_AUDIO_FILES=str(require(AUDIO_DIR / "alarm-clock-elapsed.wav")),
        EDGEGW_SPEED="0",
        EDGEGW_MAX_CHUNKS=str(sent),
    )
    assert capture.wait(60) == 0, capture.output()[-2000:]
    flood_over = time.monotonic()

    def settled(message: Seen) -> bool:
        if not message.topic.endswith("/metrics/audio-classifier"):
            return False
        counters = message.json()["counters"]
        shed = counters.get("chunks_dropped", 0) + counters.get("qos0_dropped", 0)
        return bool(counters.get("chunks_classified", 0) + shed >= sent)

    counters = observer.wait_for(settled, timeout_s=20)[-1].json()["counters"]
    settle_s = time.monotonic() - flood_over
    shed = counters.get("chunks_dropped", 0) + counters.get("qos0_dropped", 0)
    assert shed > 0, counters
    assert counters["chunks_classified"] < sent
    # Bounded work left at the end of the flood: well under the 750 s sent.
    assert settle_s < 5.0, settle_s
    assert classifier.poll() is None
