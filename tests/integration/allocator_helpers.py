"""Levels, knobs and plans for the bandwidth-allocator tests."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from schemas.qos import QosLevel, QosLevels
from tests.harness.probe import Probe, Seen

# Two analytics with hand-checkable optima (utility units, weight 1 each):
#   camera.front: low 50 kbit/s 0.3, mid 200 0.7, high 800 1.0
#   audio.mic:    low 16 0.4,         high 128 1.0
CAMERA = "camera.front"
AUDIO = "audio.mic"
CAMERA_LEVELS = [("low", 50.0, 0.3), ("mid", 200.0, 0.7), ("high", 800.0, 1.0)]
AUDIO_LEVELS = [("low", 16.0, 0.4), ("high", 128.0, 1.0)]


def levels_payload(source: str, analytic: str, levels: list[tuple[str, float, float]]) -> bytes:
    body = QosLevels(
        source=source,
        analytic=analytic,
        levels=[
            QosLevel(name=name, params={"level": name}, cost_kbps=cost, utility=utility)
            for name, cost, utility in levels
        ],
    )
    return body.to_bytes()


def offer_both(root: str, camera: Probe, audio: Probe) -> None:
    camera.publish(
        f"{root}/qos/{CAMERA}/levels",
        levels_payload("camera-capture", CAMERA, CAMERA_LEVELS),
        retain=True,
    )
    audio.publish(
        f"{root}/qos/{AUDIO}/levels",
        levels_payload("audio-capture", AUDIO, AUDIO_LEVELS),
        retain=True,
    )


def knob_is(root: str, analytic: str, level: str) -> Callable[[Seen], bool]:
    def match(message: Seen) -> bool:
        return (
            message.topic == f"{root}/qos/{analytic}"
            and bool(message.payload)
            and message.json()["level"]["name"] == level
        )

    return match


def latest_knobs(observer: Probe, root: str) -> dict[str, str]:
    """analytic -> level name of the last knob seen for it."""
    knobs: dict[str, str] = {}
    for message in observer.received(lambda m: m.topic.startswith(f"{root}/qos/")):
        if message.topic.endswith("/levels") or not message.payload:
            continue
        body = orjson.loads(message.payload)
        knobs[body["analytic"]] = body["level"]["name"]
    return knobs


def set_config(operator: Probe, root: str, **values: object) -> None:
    operator.publish(f"{root}/config/bandwidth-allocator", orjson.dumps(values), retain=True)


def latency_of(observer: Probe, where: Callable[[Seen], bool], since: float) -> float:
    """Seconds from `since` to the first message `where` holds for (printed)."""
    seen = observer.wait_for(lambda m: m.at >= since and where(m), timeout_s=10)
    latency = float(seen[0].at - since)
    print(f"effect seen {latency:.3f} s after the change")
    return latency
