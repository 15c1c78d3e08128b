"""Every analytic stage publishes `summary/<analytic>`: what it saw per period."""

from __future__ import annotations

from tests.harness.probe import MakeProbe
from tests.harness.stage_process import StartStage
from tests.integration.audio_helpers import AUDIO_DIR, require
from tests.integration.video_helpers import VIDEO


def test_sound_and_object_summaries_count_what_was_seen(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/summary/+")
    observer.subscribe(f"{root}/status/+")
    stage("audio-classifier", EDGEGW_SUMMARY_PERIOD_S="2")
    stage("object-detector")
    stage("object-tracker", EDGEGW_SUMMARY_PERIOD_S="2")  # it makes the object events
    observer.wait_for(lambda m: m.payload == b"online", count=3)
    stage(
        "audio-capture",
        EDGEGW_MIC="hall",
        EDGEGW_AUDIO_FILES=str(require(AUDIO_DIR / "alarm-clock-elapsed.wav")),
        EDGEGW_SPEED="2",
        EDGEGW_MAX_CHUNKS="20",
    )
    stage(
        "camera-capture",
        EDGEGW_CAMERA="lobby",
        EDGEGW_SOURCE=str(require(VIDEO)),
        EDGEGW_LOOP="false",
        EDGEGW_FILE_PACING="frames",
        EDGEGW_FPS="10",
        EDGEGW_MAX_WIDTH="384",
        EDGEGW_MAX_HEIGHT="288",
        EDGEGW_MAX_FRAMES="60",
    )
    sound = observer.wait_for(
        lambda m: m.topic.endswith("/summary/audio-classifier"), timeout_s=20
    )[0].json()
    assert sound["analytic"] == "audio-classifier" and sound["period_s"] == 2
    assert sum(sound["values"]["top_class"].values()) >= 1
    assert all(key.startswith("hall.") for key in sound["values"]["top_class"])
    objects = observer.wait_for(
        lambda m: m.topic.endswith("/summary/object-tracker"), timeout_s=20
    )[0].json()
    assert objects["values"]["new_objects"].get("lobby.person", 0) >= 1
