"""camera-capture -> Mosquitto -> object-detector (one or more replicas) ->
object-tracker as real processes, on the real model and real video
(vtest.avi: pedestrians, 768x576, 10 fps)."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StageProcess, StartStage
from tests.integration.video_helpers import (
    VIDEO,
    frame_properties,
    latency_s,
    offer_frames,
    percentile,
    rss_mib,
    vtest_jpegs,
    wait_online,
    watched_detector,
)

# Established by looking at vtest.avi frames 0-149 (tests/unit/test_tracker.py):
# 9 different people. The tracker on the same frames (no broker) gives 13
# tracks; through the pipeline the frames are JPEG-encoded once more and a
# few may be dropped, so the tolerance is that of the unit test: at least 8,
# at most 15 person events (each confirmed track with a good score is one).
PEOPLE_IN_FIRST_150_FRAMES = 9
MAX_PERSON_EVENTS = 15


def test_replayed_video_gives_person_events_with_stable_ids(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=1)
    detector = stage("object-detector", EDGEGW_THREADS="1")
    tracker = stage("object-tracker", EDGEGW_CAMERA_SILENT_AFTER_S="2")
    wait_online(observer, root, "object-detector")
    wait_online(observer, root, "object-tracker")
    replay_150_frames(stage, observer, root)
    check_person_events(observer, root)
    assert detector.poll() is None and tracker.poll() is None


def three_replicas_and_a_tracker(
    stage: StartStage, probe: MakeProbe, root: str, prefix: str
) -> tuple[Probe, list[StageProcess]]:
    """Detector replicas <prefix>1..3 (one thread each) and one tracker, all
    online, and an operator watching the whole tree."""
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=1)
    replicas = [
        stage("object-detector", EDGEGW_THREADS="1", EDGEGW_INSTANCE=f"{prefix}{k}")
        for k in (1, 2, 3)
    ]
    stage("object-tracker", EDGEGW_CAMERA_SILENT_AFTER_S="2")
    wait_online(observer, root, "object-detector", count=3)
    wait_online(observer, root, "object-tracker")
    return observer, replicas


def test_three_detector_replicas_and_one_tracker_keep_one_id_per_person(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    """Each replica gets a third of the frames; the tracker sees them all, in
    order, so a person walking through is still one event with one id (a
    tracker per replica would see each person in every third frame only)."""
    observer, replicas = three_replicas_and_a_tracker(stage, probe, root, "r")
    replay_150_frames(stage, observer, root)
    by_id = check_person_events(observer, root)
    feed = observer.received(lambda m: m.topic == f"{root}/detections/lobby/frame")
    instances = {m.json()["instance"] for m in feed}
    print(f"{len(by_id)} person events from replicas {sorted(instances)}")
    assert instances == {"r1", "r2", "r3"}, "the shared subscription splits the frames"
    assert all(replica.poll() is None for replica in replicas)


def test_a_replica_killed_mid_track_leaves_the_events_going_with_the_same_id(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer, replicas = three_replicas_and_a_tracker(stage, probe, root, "k")
    events_topic = f"{root}/event/lobby"
    start_camera(stage)
    # People are in view and tracked: kill one replica without a goodbye.
    observer.wait_for(lambda m: m.topic == events_topic, timeout_s=30)
    time.sleep(1.0)
    killed_at = time.time()
    replicas[0].kill()
    wait_camera_done(observer, root)
    by_id = check_person_events(observer, root)
    spanning = [
        event_id
        for event_id, lifecycle in by_id.items()
        if lifecycle[0]["start_ts"] < killed_at - 0.5 and lifecycle[-1]["end_ts"] > killed_at + 2
    ]
    feed = observer.received(lambda m: m.topic == f"{root}/detections/lobby/frame")
    after = {m.json()["instance"] for m in feed if m.at > killed_at + 0.5}
    print(f"{len(by_id)} person events; {len(spanning)} ran through the kill; after it {after}")
    assert spanning, "an event open when the replica died must go on with its id"
    assert "k1" not in after and after == {"k2", "k3"}


def start_camera(stage: StartStage) -> None:
    stage(
        "camera-capture",
        EDGEGW_CAMERA="lobby",
        EDGEGW_SOURCE=str(VIDEO),
        EDGEGW_LOOP="false",
        EDGEGW_FILE_PACING="frames",
        EDGEGW_FPS="10",
        EDGEGW_MAX_WIDTH="768",
        EDGEGW_MAX_HEIGHT="576",
        EDGEGW_MAX_FRAMES="150",
    )


def wait_camera_done(observer: Probe, root: str) -> None:
    frames = observer.wait_for(
        lambda m: m.topic == f"{root}/status/camera-capture" and m.payload == b"offline",
        timeout_s=40,
    )
    assert frames
    # The camera is gone: 2 s of silence end every open event.
    time.sleep(3)


def replay_150_frames(stage: StartStage, observer: Probe, root: str) -> None:
    start_camera(stage)
    wait_camera_done(observer, root)


def check_person_events(observer: Probe, root: str) -> dict[str, list[dict[str, Any]]]:
    events_topic = f"{root}/event/lobby"
    events = [m.json() for m in observer.received(lambda m: m.topic == events_topic)]
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_id[event["event_id"]].append(event)
    detections = observer.received(lambda m: m.topic == f"{root}/detections/lobby")
    seqs = [m.json()["seq"] for m in detections]
    print(f"person events {len(by_id)}, detections {len(detections)} of 150 frames")
    assert len(seqs) == len(set(seqs)) and len(seqs) >= 135, "frames lost or repeated"
    assert seqs == sorted(seqs), "the tracker publishes in frame order"
    assert all(e["label"] == "person" for e in events)
    assert PEOPLE_IN_FIRST_150_FRAMES - 1 <= len(by_id) <= MAX_PERSON_EVENTS, sorted(by_id)
    for event_id, lifecycle in by_id.items():
        kinds = [e["type"] for e in lifecycle]
        assert kinds[0] == "new" and kinds[-1] == "end" and kinds.count("end") == 1, kinds
        assert [e["id"] for e in lifecycle] == [f"{event_id}.{n}" for n in range(len(kinds))]
        assert len({e["start_ts"] for e in lifecycle}) == 1
    long_lived = [ls for ls in by_id.values() if ls[-1]["end_ts"] - ls[0]["start_ts"] >= 8.0]
    assert len(long_lived) >= 3, "people in view for the whole clip must keep one id"
    snapshots = observer.received(lambda m: m.topic == f"{root}/snapshot/lobby/person")
    assert snapshots and snapshots[-1].payload.startswith(b"\xff\xd8")
    return by_id


def detections_of(observer: Probe, root: str, camera: str, since: float = 0.0) -> list[Seen]:
    """What the detectors found (each frame's detections, before the tracker)."""
    topic = f"{root}/detections/{camera}/frame"
    return observer.received(lambda m: m.topic == topic and m.at >= since)


def test_two_detectors_split_frames_exactly_once_and_process_more(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=0)
    env = {"EDGEGW_THREADS": "1", "EDGEGW_LABELS": "[]"}
    first = stage("object-detector", EDGEGW_INSTANCE="a", **env)
    second = stage("object-detector", EDGEGW_INSTANCE="b", **env)
    wait_online(observer, root, "object-detector", count=2)
    # A replica per core, as replicas on nodes of their own: one detector (a
    # decode and a model thread) would otherwise take both cores of a small
    # machine by itself, and two could not do more than one.
    assert (os.cpu_count() or 1) >= 2, "scaling across replicas needs two cores"
    first.pin({0})
    second.pin({1})
    camera = probe("camera-capture")
    topic = f"{root}/camera/door/frame"
    frames = vtest_jpegs(40, max_width=384)

    # Well under what the two can do: every frame must come out exactly once.
    next_seq = offer_frames(camera, topic, frames, fps=8, seconds=40 / 8)
    found = observer.wait_for(lambda m: m.topic == f"{root}/detections/door/frame", count=40)
    time.sleep(0.5)
    seqs = [m.json()["seq"] for m in detections_of(observer, root, "door")]
    assert sorted(seqs) == list(range(40)), "each frame processed exactly once"
    by_instance = {m.json()["instance"] for m in found}
    assert by_instance == {"a", "b"}, "the shared subscription splits the frames"

    # Far more than both can do: count what each setup gets through.
    def throughput(seconds: float = 4.0) -> float:
        nonlocal next_seq
        start = time.time()
        next_seq = offer_frames(camera, topic, frames, 60, seconds, first_seq=next_seq)
        time.sleep(0.3)
        done = detections_of(observer, root, "door", since=start + 0.5)
        return len(done) / (seconds - 0.5)

    both = throughput()
    second.terminate()
    assert second.wait(10) == 0
    one = throughput()
    print(f"frames/s: two detectors {both:.1f}, one {one:.1f}")
    assert both > 1.2 * one


def test_knob_on_retained_qos_topic_changes_fps_and_size_within_2_s(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=0)
    # Only a detector may read frames (the broker's ACL): watch as one.
    watcher = probe("object-detector")
    watcher.subscribe(f"{root}/camera/+/frame", qos=0)
    stage(
        "camera-capture",
        EDGEGW_CAMERA="yard",
        EDGEGW_SOURCE=str(VIDEO),
        EDGEGW_FPS="10",
        EDGEGW_MAX_WIDTH="384",
        EDGEGW_MAX_HEIGHT="384",
    )
    frame_topic = f"{root}/camera/yard/frame"
    watcher.wait_for(lambda m: m.topic == frame_topic, count=10)
    levels = observer.wait_for(lambda m: m.topic == f"{root}/qos/camera.yard/levels")[-1].json()
    assert all(level["cost_kbps"] > 0 for level in levels["levels"])
    assert {int(level["params"]["fps"]) for level in levels["levels"]} == {2, 5, 10}

    knob = {
        "source": "bandwidth-allocator",
        "analytic": "camera.yard",
        "level": {
            "name": "low",
            "params": {"fps": 4, "max_width": 192, "max_height": 192, "jpeg_quality": 50},
            "cost_kbps": 40.0,
            "utility": 0.3,
        },
    }
    allocator = probe("bandwidth-allocator")
    sent = time.time()
    assert allocator.publish(f"{root}/qos/camera.yard", knob, retain=True) == 0
    time.sleep(4.5)
    after = watcher.received(lambda m: m.topic == frame_topic and m.at >= sent)
    first_small = next(m for m in after if m.properties["width"] == "192")
    assert first_small.at - sent < 2.0
    assert all(m.properties["width"] == "192" for m in after if m.at >= sent + 2.0)
    window = [m for m in after if sent + 2.0 <= m.at < sent + 4.5]
    fps = len(window) / 2.5
    print(f"knob applied after {first_small.at - sent:.2f} s; fps before 10, after {fps:.1f}")
    assert 3.0 <= fps <= 5.0


def test_overload_keeps_latency_flat_counts_drops_and_bounds_memory(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/#", qos=0)
    detector = stage("object-detector", EDGEGW_THREADS="1", EDGEGW_HEALTH_INTERVAL_S="1")
    wait_online(observer, root, "object-detector")
    camera = probe("camera-capture")
    topic = f"{root}/camera/gate/frame"
    frames = vtest_jpegs(50, max_width=384)
    # What the detector can do alone, then 4x that.
    start = time.time()
    next_seq = offer_frames(camera, topic, frames, fps=40, seconds=2)
    capacity = len(detections_of(observer, root, "gate", since=start + 0.5)) / 1.5
    rss_early = rss_mib(detector.pid)
    start = time.time()
    offer_frames(camera, topic, frames, fps=4 * capacity, seconds=10, first_seq=next_seq)
    time.sleep(0.5)
    rss_late = rss_mib(detector.pid)
    early = [
        latency_s(m) for m in detections_of(observer, root, "gate", start + 1) if m.at < start + 4
    ]
    late = [
        latency_s(m) for m in detections_of(observer, root, "gate", start + 7) if m.at < start + 10
    ]
    p99_early, p99_late = percentile(early, 0.99), percentile(late, 0.99)
    metrics = observer.wait_for(lambda m: m.topic == f"{root}/metrics/object-detector")[-1].json()
    dropped = metrics["counters"].get("frames_dropped", 0)
    print(
        f"capacity {capacity:.1f} fps; p99 early {p99_early * 1000:.0f} ms, late "
        f"{p99_late * 1000:.0f} ms; dropped {dropped}; RSS {rss_early:.0f} -> {rss_late:.0f} MiB"
    )
    assert p99_late <= 1.5 * p99_early + 0.05, "latency grows under overload"
    assert p99_late < 0.5
    assert dropped > 0
    assert rss_late - rss_early < 30


def test_corrupt_jpeg_and_wrong_properties_are_dead_letters(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer, detector = watched_detector(stage, probe, root)
    camera = probe("camera-capture")
    topic = f"{root}/camera/bad/frame"
    ((jpeg, width, height),) = vtest_jpegs(1, max_width=320)
    good = {
        "seq": "1",
        "capture_ts": f"{time.time():.3f}",
        "width": str(width),
        "height": str(height),
    }
    cases = [
        (jpeg[: len(jpeg) // 2], good),  # cut short on the wire
        (b"\xff\xd8" + bytes(500) + b"\xff\xd9", good),  # markers, garbage inside
        (jpeg, {k: v for k, v in good.items() if k != "capture_ts"}),
        (jpeg, {**good, "width": "abc"}),
        (jpeg, {**good, "width": str(width * 2)}),  # says one size, is another
    ]
    for payload, properties in cases:
        camera.publish(topic, payload, qos=0, user_properties=properties)
        time.sleep(0.2)  # one at a time: latest-wins would merge them
    letters = observer.wait_for(
        lambda m: m.topic == f"{root}/deadletter/object-detector", count=len(cases)
    )
    reasons = [m.json()["reason"] for m in letters]
    print(reasons)
    camera.publish(topic, jpeg, qos=0, user_properties={**good, "seq": "2"})
    found = observer.wait_for(lambda m: m.topic == f"{root}/detections/bad/frame")
    assert [m.json()["seq"] for m in found] == [2]
    assert detector.poll() is None


def test_the_detector_process_never_maps_opencv(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    """object-detector decodes and crops with simplejpeg and resizes with
    Pillow: OpenCV (about 16 MB a replica) is not in its address space, even
    after frames with crops."""
    observer, detector = watched_detector(stage, probe, root)
    camera = probe("camera-capture")
    topic = f"{root}/camera/maps/frame"
    for seq, (jpeg, width, height) in enumerate(vtest_jpegs(3, max_width=384)):
        camera.publish(topic, jpeg, qos=0, user_properties=frame_properties(seq, width, height))
        time.sleep(0.2)  # one at a time: latest-wins would merge them
    cropped = observer.wait_for(
        lambda m: (
            m.topic == f"{root}/detections/maps/frame"
            and any(found.get("crop") for found in m.json()["objects"])
        )
    )
    mapped = Path(f"/proc/{detector.pid}/maps").read_text()
    print(f"{len(cropped)} frames with crops; RSS {rss_mib(detector.pid):.0f} MiB")
    assert "/simplejpeg" in mapped  # what decoded them: the reading sees the libraries
    assert "cv2" not in mapped and "opencv" not in mapped.lower()
    assert detector.poll() is None
