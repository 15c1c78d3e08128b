"""`python -m tests.bench.uplink_bench`: what the cloud costs, against raw forwarding.

Runs the gateway as processes on a gateway Mosquitto (the project's config)
with a second Mosquitto playing the cloud (TLS, client certificates): gas
replay with a smoke leak -> gas-average, and — when the capture stages exist —
a video file -> camera-capture -> object-detector and a sound file ->
audio-capture -> audio-classifier; then alert-forwarder -> cloud-bridge.

Measured in the same run:
* uploaded: every byte that reached the cloud broker under the gateway's tree
  (topic + payload + the fixed MQTT PUBLISH overhead the bridge charges);
* raw_forward: what forwarding every input to the cloud would cost — every
  gas reading, JPEG frame and PCM chunk as published on the gateway broker
  (topic + payload + user properties + the same overhead);
* alerts: published by alert-forwarder on the gateway vs. arrived at the cloud.

Prints one JSON object: {"uplink": {...}}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from schemas.topic_spec import publish_bytes
from tests.harness.assets import AUDIO_DIR, VIDEO
from tests.harness.broker import MosquittoBroker
from tests.harness.probe import Probe, Seen
from tests.harness.stage_process import REPO, StageProcess
from tests.integration.cloud.cloud_broker import CloudBroker, TestPki
from tests.integration.cloud.cloud_probe import CloudProbe

GATEWAY = "bench"
ROOT = f"edgegw/{GATEWAY}"
ALARM_SOUND = AUDIO_DIR / "alarm-clock-elapsed.wav"
HAS_VIDEO = (REPO / "services" / "camera_capture" / "stage.py").exists() and VIDEO.exists()
HAS_AUDIO = (REPO / "services" / "audio_capture" / "stage.py").exists() and ALARM_SOUND.exists()
PLACES = {"kitchen": "kitchen", "cam1": "kitchen", "mic1": "kitchen"}


def wire_bytes(message: Seen) -> int:
    return publish_bytes(message.topic, message.payload, message.properties)


def _online(observer: Probe, stage: str, timeout_s: float = 60) -> None:
    observer.wait_for(
        lambda m: m.topic == f"{ROOT}/status/{stage}" and m.payload == b"online",
        timeout_s=timeout_s,
    )


def _start_gateway(
    gateway: MosquittoBroker, cloud: CloudBroker, work: Path
) -> dict[str, StageProcess]:
    def start(name: str, **env: str) -> StageProcess:
        return StageProcess(name, {**gateway.env_for(name, GATEWAY), **env}, work)

    config = orjson.dumps({"fusion": {"places": PLACES, "linger_s": 5}}).decode()
    stages = {
        "cloud-bridge": start(
            "cloud-bridge",
            **cloud.bridge_env(),
            EDGEGW_SPOOL_PATH=str(work / "spool.db"),
            EDGEGW_BUDGET_KBPS="256",
            EDGEGW_USAGE_INTERVAL_S="5",
        ),
        "alert-forwarder": start("alert-forwarder", EDGEGW_STARTUP_CONFIG=config),
        "gas-average": start("gas-average"),
    }
    if HAS_VIDEO:
        stages["object-detector"] = start("object-detector", EDGEGW_THREADS="1")
        stages["object-tracker"] = start("object-tracker")
    if HAS_AUDIO:
        stages["audio-classifier"] = start("audio-classifier")
    return stages


def _start_inputs(gateway: MosquittoBroker, work: Path, seconds: float) -> list[StageProcess]:
    def start(name: str, **env: str) -> StageProcess:
        return StageProcess(name, {**gateway.env_for(name, GATEWAY), **env}, work)

    period_s = 0.25  # MQ-series sensors sampled at 4 Hz
    sensors = "kitchen:smoke,kitchen:co,garage:lpg,boiler-room:methane"
    inputs = [
        start(
            "gas-replay",
            EDGEGW_SENSORS=sensors,
            EDGEGW_SAMPLE_PERIOD_S=str(period_s),
            EDGEGW_LEAK_RATE_PER_HOUR="0",
            EDGEGW_FIRST_LEAK_AFTER_S="2",
            EDGEGW_SEED="7",
            EDGEGW_MAX_READINGS=str(int(seconds / period_s) * 4),
        )
    ]
    if HAS_VIDEO:
        inputs.append(
            start(
                "camera-capture",
                EDGEGW_CAMERA="cam1",
                EDGEGW_SOURCE=str(VIDEO),
                EDGEGW_FPS="5",
                EDGEGW_MAX_WIDTH="640",
                EDGEGW_MAX_HEIGHT="480",
                EDGEGW_MAX_FRAMES=str(int(seconds * 5)),
            )
        )
    if HAS_AUDIO:
        inputs.append(
            start(
                "audio-capture",
                EDGEGW_MIC="mic1",
                EDGEGW_AUDIO_FILES=str(ALARM_SOUND),
                EDGEGW_SILENCE_BETWEEN_S="2",
                EDGEGW_MAX_CHUNKS=str(int(seconds / 0.5)),
            )
        )
    return inputs


def run(seconds: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="uplink-bench-"))
    pki = TestPki.create(work / "pki")
    gateway = MosquittoBroker(work / "gateway")
    cloud = CloudBroker(work / "cloud", pki)
    gateway.start()
    cloud.start()
    processes: list[StageProcess] = []
    probes: list[Probe] = []
    try:
        at_cloud = CloudProbe(cloud)
        at_cloud.subscribe(f"{ROOT}/#")
        observer = Probe(gateway, "operator")
        probes.append(observer)
        for pattern in ("status/+", "sensor/gas/+", "alert/#", "uplink/usage"):
            observer.subscribe(f"{ROOT}/{pattern}")
        frames = Probe(gateway, "object-detector")
        chunks = Probe(gateway, "audio-classifier")
        probes += [frames, chunks]
        frames.subscribe(f"{ROOT}/camera/+/frame", qos=0)
        chunks.subscribe(f"{ROOT}/audio/+/chunk", qos=0)
        stages = _start_gateway(gateway, cloud, work)
        processes += stages.values()
        for name in stages:
            _online(observer, name)
        started = time.monotonic()
        inputs = _start_inputs(gateway, work, seconds)
        processes += inputs
        for process in inputs:
            process.wait(seconds + 120)
        replay_s = time.monotonic() - started
        time.sleep(3)  # let the last events and alerts settle
        alerts = {m.json()["id"] for m in observer.received(lambda m: "/alert/" in m.topic)}
        deadline = time.monotonic() + 30
        delivered: set[str] = set()
        while time.monotonic() < deadline:
            delivered = {
                orjson.loads(m.payload)["id"]
                for m in at_cloud.received(lambda m: "/alert/" in m.topic)
            }
            if alerts <= delivered:
                break
            time.sleep(0.2)
        uploaded: dict[str, int] = {}
        for message in at_cloud.received():
            kind = message.topic[len(ROOT) + 1 :].split("/")[0]
            uploaded[kind] = uploaded.get(kind, 0) + wire_bytes(message)
        raw = {
            "gas_readings": sum(
                wire_bytes(m) for m in observer.received(lambda m: "/sensor/gas/" in m.topic)
            ),
            "video_frames": sum(wire_bytes(m) for m in frames.received()),
            "audio_chunks": sum(wire_bytes(m) for m in chunks.received()),
        }
        counts = {
            "gas_readings": len(observer.received(lambda m: "/sensor/gas/" in m.topic)),
            "video_frames": len(frames.received()),
            "audio_chunks": len(chunks.received()),
        }
        at_cloud.close()
        total_up = sum(uploaded.values())
        total_raw = sum(raw.values())
        return {
            "uplink": {
                "replay_s": round(replay_s, 1),
                "modalities": ["gas"]
                + (["video"] if HAS_VIDEO else [])
                + (["audio"] if HAS_AUDIO else []),
                "uploaded_bytes": total_up,
                "uploaded_by_class": uploaded,
                "raw_forward_bytes": total_raw,
                "raw_forward_by_input": raw,
                "inputs": counts,
                "ratio": round(total_up / total_raw, 5) if total_raw else None,
                "ratio_goal": 0.01,
                "alerts_published": len(alerts),
                "alerts_delivered": len(alerts & delivered),
                "alerts_delivered_fraction": (
                    round(len(alerts & delivered) / len(alerts), 4) if alerts else None
                ),
                "alerts_delivered_goal": 1.0,
            }
        }
    finally:
        for process in processes:
            process.stop()
        for client in probes:
            client.close()
        cloud.stop()
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the replay")
    args = parser.parse_args()
    result = run(args.seconds)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
