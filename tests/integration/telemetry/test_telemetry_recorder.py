"""telemetry-recorder as a process, between the real broker and a real
time-series server (VictoriaMetrics on the InfluxDB v2 write API)."""

from __future__ import annotations

import time

import orjson

from schemas.audio import AudioClasses, ClassScore
from tests.harness.events import detections, smoke_alarm
from tests.harness.probe import MakeProbe, Probe, Seen
from tests.harness.stage_process import StageProcess, StartStage
from tests.integration.gas_helpers import reading
from tests.integration.telemetry_helpers import VictoriaMetrics

FAST = {
    "EDGEGW_FLUSH_INTERVAL_S": "0.2",
    "EDGEGW_RETRY_INITIAL_S": "0.1",
    "EDGEGW_RETRY_MAX_S": "0.5",
    "EDGEGW_WRITE_TIMEOUT_S": "2",
}


def _recorder(stage: StartStage, server_url: str, **extra: str) -> StageProcess:
    return stage(
        "telemetry-recorder",
        EDGEGW_INFLUX_URL=server_url,
        EDGEGW_INFLUX_ORG="edgegw",
        EDGEGW_INFLUX_BUCKET="telemetry",
        EDGEGW_INFLUX_TOKEN="secret-token",
        **{**FAST, **extra},
    )


def _online(probe: MakeProbe, root: str) -> Probe:
    observer = probe("operator")
    observer.subscribe(f"{root}/status/#")
    observer.wait_for(
        lambda m: m.topic == f"{root}/status/telemetry-recorder" and m.payload == b"online"
    )
    return observer


def _publish_readings(
    probe: MakeProbe, root: str, sensor: str, gas: str, values: list[float]
) -> None:
    """Readings 10 ms apart from now on: time order is publishing order."""
    source = probe("gas-replay")
    start = time.time()
    for index, value in enumerate(values):
        ts = start + index * 0.01
        source.publish(f"{root}/sensor/gas/{sensor}", reading(sensor, gas, value, ts))


def _values(server: VictoriaMetrics, match: str) -> list[float]:
    """Values in time order (an export may split one series over several lines)."""
    samples = [
        (stamp, value)
        for series in server.export(match)
        for stamp, value in zip(series["timestamps"], series["values"], strict=True)
    ]
    return [value for _, value in sorted(samples)]


def test_points_land_with_their_tags_and_counts(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str, victoria: VictoriaMetrics
) -> None:
    recorder = _recorder(stage, victoria.url, EDGEGW_HEALTH_INTERVAL_S="0.5")
    _online(probe, root)
    gateway = f'gateway="{gateway_id}"'

    _publish_readings(probe, root, "kitchen", "co", [float(v) for v in range(10)])
    _publish_readings(probe, root, "garage", "lpg", [100.0] * 5)
    duplicate = reading("kitchen", "co", 99.0, time.time() + 1)  # after the ten
    gas_source = probe("gas-replay")
    gas_source.publish(f"{root}/sensor/gas/kitchen", duplicate)
    gas_source.publish(f"{root}/sensor/gas/kitchen", duplicate)  # a redelivery: recorded once

    audio = probe("audio-classifier")
    now = time.time()
    for patch in range(3):
        classes = AudioClasses(
            source="audio-classifier",
            mic="hall",
            patch_index=patch,
            start_ts=now + patch * 0.48,
            end_ts=now + patch * 0.48 + 0.96,
            top=[
                ClassScore(index=382, name="Smoke detector, smoke alarm", score=0.82),
                ClassScore(index=0, name="Speech", score=0.1),
            ],
        )
        audio.publish(f"{root}/audio/hall/classes", classes.model_dump(mode="json"), qos=0)
    event = smoke_alarm("e1", "hall", now, score=0.82)
    audio.publish(f"{root}/event/hall", event.model_dump(mode="json"))

    scored = [("person", 0.9), ("person", 0.7), ("car", 0.6)]
    frame = detections("door", scored, inference_ms=30.0, capture_ts=now)
    probe("object-tracker").publish(  # the publisher of a camera's detections
        f"{root}/detections/door", frame.model_dump(mode="json"), qos=0
    )

    kitchen = f'gas_reading_value{{{gateway},sensor="kitchen",gas="co",stage="gas-replay"}}'
    assert victoria.wait_for_samples(kitchen, 11) == 11
    assert _values(victoria, kitchen) == [*map(float, range(10)), 99.0]
    garage = f'gas_reading_value{{{gateway},sensor="garage",gas="lpg"}}'
    assert victoria.wait_for_samples(garage, 5) == 5
    smoke = f'audio_class_score{{{gateway},mic="hall",class="Smoke detector, smoke alarm"}}'
    assert victoria.wait_for_samples(smoke, 3) == 3
    assert _values(victoria, smoke) == [0.82] * 3
    rank = f'audio_class_rank{{{gateway},mic="hall",class="Speech"}}'
    assert _values(victoria, rank) == [2.0] * 3
    sound = f'event_count{{{gateway},kind="sound",label="smoke_alarm",mic="hall",type="new"}}'
    assert victoria.wait_for_samples(sound, 1) == 1
    person = f'detections_by_label_count{{{gateway},camera="door",label="person"}}'
    assert victoria.wait_for_samples(person, 1) == 1
    assert _values(victoria, person) == [2.0]
    assert _values(victoria, f'detections_objects{{{gateway},camera="door"}}') == [3.0]
    # The recorder records its own health and counters like any stage's.
    own = f'stage_metrics_messages_recorded{{{gateway},stage="telemetry-recorder"}}'
    victoria.wait_for_samples(own, 1)
    uptime = f'stage_health_uptime_s{{{gateway},stage="telemetry-recorder",state="ok"}}'
    victoria.wait_for_samples(uptime, 1)
    assert recorder.poll() is None


def test_points_still_buffered_at_sigterm_are_written_before_exit(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str, victoria: VictoriaMetrics
) -> None:
    recorder = _recorder(
        stage, victoria.url, EDGEGW_FLUSH_INTERVAL_S="120", EDGEGW_HEALTH_INTERVAL_S="0.3"
    )
    observer = _online(probe, root)
    observer.subscribe(f"{root}/metrics/telemetry-recorder", qos=0)
    _publish_readings(probe, root, "attic", "co2", [400.0] * 7)

    def holds_the_readings(message: Seen) -> bool:
        if not message.topic.endswith("/metrics/telemetry-recorder"):
            return False
        counters = message.json()["counters"]
        return bool(counters.get("messages_recorded", 0) >= 7)

    observer.wait_for(holds_the_readings)
    series = f'gas_reading_value{{gateway="{gateway_id}",sensor="attic"}}'
    assert victoria.samples(series) == 0  # buffered: the batch is neither full nor due
    recorder.terminate()
    assert recorder.wait(15) == 0
    assert victoria.samples(series) == 7


def test_while_the_server_is_down_points_are_buffered_bounded_and_flushed_on_return(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str, victoria: VictoriaMetrics
) -> None:
    # No health messages of its own in the way: the buffer holds readings only.
    recorder = _recorder(
        stage,
        victoria.url,
        EDGEGW_MAX_BUFFERED_POINTS="50",
        EDGEGW_BATCH_SIZE="10",
        EDGEGW_HEALTH_INTERVAL_S="600",
    )
    _online(probe, root)
    series = f'gas_reading_value{{gateway="{gateway_id}",sensor="kitchen"}}'
    _publish_readings(probe, root, "kitchen", "co", [1.0] * 5)
    assert victoria.wait_for_samples(series, 5) == 5

    victoria.stop()
    outage = [float(100 + i) for i in range(80)]
    _publish_readings(probe, root, "kitchen", "co", outage)
    deadline = time.monotonic() + 10
    while "unreachable" not in recorder.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # several failed retries while the server stays away
    assert recorder.poll() is None, recorder.output()[-2000:]
    assert "time-series server unreachable" in recorder.output()

    victoria.start()
    assert victoria.wait_for_samples(series, 55) == 55
    # The 50 newest points of the outage survived, in order; the 30 oldest were dropped.
    assert _values(victoria, series) == [1.0] * 5 + outage[30:]
    logs = [orjson.loads(line) for line in recorder.output().splitlines() if line.startswith("{")]
    back = [entry for entry in logs if entry["msg"] == "time-series server back"]
    assert back and back[0]["dropped"] == 30, back
    assert recorder.poll() is None


def test_a_recorder_started_before_its_server_writes_once_it_appears(
    stage: StartStage, probe: MakeProbe, root: str, gateway_id: str, victoria: VictoriaMetrics
) -> None:
    victoria.stop()
    recorder = _recorder(stage, victoria.url, EDGEGW_HEALTH_INTERVAL_S="600")
    _online(probe, root)
    _publish_readings(probe, root, "boiler", "methane", [10.0, 20.0, 30.0])
    time.sleep(1.0)
    assert recorder.poll() is None, recorder.output()[-2000:]
    victoria.start()
    series = f'gas_reading_value{{gateway="{gateway_id}",sensor="boiler",gas="methane"}}'
    assert victoria.wait_for_samples(series, 3) == 3
    assert _values(victoria, series) == [10.0, 20.0, 30.0]
