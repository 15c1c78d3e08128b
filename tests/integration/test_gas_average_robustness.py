"""gas-average under bad input, bad config, shutdown and crashes."""

from __future__ import annotations

import time

import orjson

from tests.harness.probe import MakeProbe, Probe
from tests.harness.stage_process import StageProcess, StartStage
from tests.integration.gas_helpers import reading


def _start(
    stage: StartStage, probe: MakeProbe, root: str, watch: str, **env: str
) -> tuple[Probe, StageProcess]:
    """An operator watching `<root>/<watch>`, then gas-average with `env`, online."""
    observer = probe("operator")
    observer.subscribe(f"{root}/{watch}")
    process = stage("gas-average", **env)
    observer.wait_for(lambda m: m.topic == f"{root}/status/gas-average" and m.payload == b"online")
    return observer, process


def test_every_kind_of_bad_reading_is_dead_lettered_and_the_next_is_processed(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer, _ = _start(stage, probe, root, "#", EDGEGW_PUBLISH_INTERVAL_S="0")
    source = probe("gas-replay")
    topic = f"{root}/sensor/gas/kitchen"
    good = reading("kitchen", "co", 4.0)
    bad = {
        "invalid JSON": (b"{not json", "json"),
        "wrong type": (orjson.dumps({**good, "value": "high"}), "value"),
        "unknown field": (orjson.dumps({**good, "colour": "red"}), "colour"),
        "unknown schema version": (orjson.dumps({**good, "schema_version": 2}), "schema_version"),
        "empty": (b"", "empty"),
        "oversized": (orjson.dumps({**good, "source": "x" * 5000}), "exceeds"),
        "negative": (orjson.dumps({**good, "value": -1}), "value"),
    }
    for payload, _ in bad.values():
        source.publish(topic, payload)
    letters = observer.wait_for(
        lambda m: m.topic == f"{root}/deadletter/gas-average", count=len(bad)
    )
    reasons = [letter.json()["reason"] for letter in letters]
    for (name, (_, word)), reason in zip(bad.items(), reasons, strict=True):
        assert word.lower() in reason.lower(), (name, reason)
    assert all(letter.json()["topic"] == topic for letter in letters)
    source.publish(topic, good)
    average = observer.wait_for(lambda m: m.topic == f"{root}/gas/kitchen/average")[0].json()
    assert average["reading_id"] == good["id"]


def test_retained_config_is_applied_within_a_second_and_a_bad_one_rejected(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    observer, _ = _start(stage, probe, root, "#", EDGEGW_PUBLISH_INTERVAL_S="0")
    operator = probe("operator")
    state_topic = f"{root}/status/gas-average/config"

    sent = time.monotonic()
    change = {"time_window_s": 30, "generation": 7}
    operator.publish(f"{root}/config/gas-average", change, retain=True)
    state = observer.wait_for(lambda m: m.topic == state_topic, timeout_s=5)[-1]
    assert state.at - (time.time() - (time.monotonic() - sent)) < 1.0
    accepted = state.json()
    assert accepted["status"] == "accepted" and accepted["generation"] == 7
    assert accepted["applied"]["time_window_s"] == 30

    for bad, field in (
        ({"time_window_s": -5}, "time_window_s"),
        ({"thresholds": {"co": {"enter": 10, "exit": 20}}}, "thresholds.co"),
        ({"windw_s": 3}, "windw_s"),
    ):
        observer.clear()
        operator.publish(f"{root}/config/gas-average", bad, retain=True)
        answer = observer.wait_for(lambda m: m.topic == state_topic, timeout_s=5)[-1].json()
        assert answer["status"] == "rejected"
        assert answer["errors"][0]["field"] == field, answer
        assert answer["applied"]["time_window_s"] == 30 and answer["generation"] == 7
        letter = observer.wait_for(lambda m: m.topic == f"{root}/deadletter/gas-average")[0]
        assert field in letter.json()["reason"]

    observer.clear()
    probe("gas-replay").publish(f"{root}/sensor/gas/k1", reading("k1", "co", 2.0))
    average = observer.wait_for(lambda m: m.topic == f"{root}/gas/k1/average")[0].json()
    assert average["time_window_s"] == 30


def test_sigterm_publishes_offline_and_exits_zero_within_the_grace_period(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    _, process = _start(stage, probe, root, "status/#", EDGEGW_SHUTDOWN_GRACE_S="3")
    process.terminate()
    assert process.wait(timeout_s=3 + 1) == 0, process.output()
    late = probe("operator")
    late.subscribe(f"{root}/status/gas-average")
    retained = late.wait_for(lambda m: m.retained)[0]
    assert retained.payload == b"offline"


def test_sigkill_leaves_the_last_will_within_one_and_a_half_keepalives(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    keepalive = 4
    observer, process = _start(
        stage, probe, root, "status/gas-average", EDGEGW_KEEPALIVE_S=str(keepalive)
    )
    killed_at = time.time()
    process.kill()
    will = observer.wait_for(lambda m: m.payload == b"offline", timeout_s=1.5 * keepalive)[0]
    assert will.at - killed_at <= 1.5 * keepalive


def test_readings_sent_during_a_sigterm_are_handled_by_the_next_run(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    """Ack-after-handling plus the persistent session: a reading the stopping
    stage did not handle stays with the broker and the next run handles it."""
    env = {"EDGEGW_PUBLISH_INTERVAL_S": "0", "EDGEGW_SHUTDOWN_GRACE_S": "2"}
    observer, first = _start(stage, probe, root, "#", **env)
    source = probe("gas-replay")
    sent = []
    start = time.time()
    for index in range(400):
        body = reading("attic", "co", 3.0, ts=start + index * 0.01)
        source.publish(f"{root}/sensor/gas/attic", body)
        sent.append(body["id"])
        if index == 150:
            first.terminate()
    assert first.wait(timeout_s=5) == 0
    stage("gas-average", **env)
    averages = observer.wait_for(
        lambda m: m.topic == f"{root}/gas/attic/average", count=len(sent), timeout_s=20
    )
    assert set(sent) <= {m.json()["reading_id"] for m in averages}


def test_a_replica_going_offline_leaves_the_stage_online_while_another_runs(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    """Two replicas share the retained `status/gas-average`: one stopping
    (its `offline`) or dying (its will) must not leave the stage marked
    offline while the other still runs; once none runs, it is offline."""
    keepalive = 3
    observer, first = _start(
        stage,
        probe,
        root,
        "status/gas-average",
        EDGEGW_INSTANCE="a",
        EDGEGW_KEEPALIVE_S=str(keepalive),
    )
    second = stage("gas-average", EDGEGW_INSTANCE="b", EDGEGW_KEEPALIVE_S=str(keepalive))
    observer.wait_for(lambda m: m.payload == b"online", count=2)

    def retained_status() -> bytes:
        late = probe("operator")
        late.subscribe(f"{root}/status/gas-average")
        payload: bytes = late.wait_for(lambda m: m.retained)[0].payload
        late.close()
        return payload

    stopped_at = time.time()
    first.terminate()
    assert first.wait(timeout_s=10) == 0
    observer.wait_for(lambda m: m.at >= stopped_at and m.payload == b"offline")
    observer.wait_for(lambda m: m.at >= stopped_at and m.payload == b"online")
    assert retained_status() == b"online"

    third = stage("gas-average", EDGEGW_INSTANCE="c", EDGEGW_KEEPALIVE_S=str(keepalive))
    observer.wait_for(lambda m: m.at >= stopped_at and m.payload == b"online", count=2)
    killed_at = time.time()
    second.kill()  # no clean stop: the broker publishes its will
    observer.wait_for(
        lambda m: m.at >= killed_at and m.payload == b"offline", timeout_s=2 * keepalive
    )
    observer.wait_for(lambda m: m.at >= killed_at and m.payload == b"online")
    assert retained_status() == b"online"

    third.terminate()
    assert third.wait(timeout_s=10) == 0
    assert retained_status() == b"offline"


def test_a_stage_does_not_answer_its_own_last_offline(
    stage: StartStage, probe: MakeProbe, root: str
) -> None:
    """The allocator reads every status at QoS 1 with a persistent session, so
    its own `offline` from its last run waits for it in the session. That is
    its own word (same instance), not a replica's: no `online` is re-said."""
    observer = probe("operator")
    observer.subscribe(f"{root}/status/bandwidth-allocator")
    first = stage("bandwidth-allocator")
    observer.wait_for(lambda m: m.payload == b"online")
    first.terminate()
    assert first.wait(timeout_s=10) == 0
    observer.wait_for(lambda m: m.payload == b"offline")
    second = stage("bandwidth-allocator")
    observer.wait_for(lambda m: m.payload == b"online", count=2)
    time.sleep(1.0)  # time for a queued `offline` to arrive and be answered
    assert [m.payload for m in observer.received()].count(b"online") == 2
    assert "online again" not in second.output()
