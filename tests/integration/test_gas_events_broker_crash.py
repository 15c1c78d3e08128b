"""The gateway broker SIGKILLed again and again while gas events stream.

Every reading opens or closes an episode (count window 1, no minimum
duration), so gas-average publishes an event per reading and the kills land
while events are in flight. No episode may lose its `new` or its `end`
(counted by episode id at a subscriber with a persistent session), and every
episode whose opening reading the broker had surely stored must arrive.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes

from tests.harness.broker import MosquittoBroker
from tests.harness.probe import Probe, new_properties
from tests.harness.stage_process import StageProcess
from tests.integration.gas_helpers import reading

GATEWAY = "crashev"
ROOT = f"edgegw/{GATEWAY}"
SENSORS = [f"s{index}" for index in range(8)]
KILLS = 3
RECONNECTED_WITHIN_S = 4.0
AUTOSAVE_S = 1.0  # broker/mosquitto.conf: autosave_interval 1


class Client:
    """A paho client that survives broker restarts: it reconnects by itself,
    with a persistent session when `session_s` is given."""

    def __init__(self, broker: MosquittoBroker, user: str, session_s: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.online_at: list[float] = []  # live (not retained) `online` statuses
        self.acked_at: dict[int, float] = {}
        self._lock = threading.Lock()
        self._topics: list[str] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            # A stage identity is bound to its own client id (dynamic security);
            # the operator is not.
            client_id=f"{user}-{uuid.uuid4().hex[:8]}" if user == "operator" else user,
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(user, broker.passwords[user])
        # paho annotates whole seconds; it takes fractions (it sleeps a float).
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        properties = new_properties(PacketTypes.CONNECT)
        if session_s:
            properties.SessionExpiryInterval = session_s
        self.client.connect(
            broker.host, broker.port, keepalive=5, clean_start=not session_s, properties=properties
        )
        self.client.loop_start()

    def subscribe(self, topic: str) -> None:
        self._topics.append(topic)
        self.client.subscribe(topic, 1)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        for topic in self._topics:
            client.subscribe(topic, 1)

    def _on_message(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            if "/status/" in message.topic:
                if message.payload == b"online" and not message.retain:
                    self.online_at.append(time.monotonic())
                return
            self.events.append(orjson.loads(message.payload))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if not reason_code.is_failure:
            self.acked_at[mid] = time.monotonic()

    def received(self) -> list[dict]:  # type: ignore[type-arg]
        with self._lock:
            return list(self.events)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_broker_kills_during_a_gas_event_stream_lose_no_new_and_no_end(
    own_broker: MosquittoBroker, tmp_path: Path
) -> None:
    operator = Probe(own_broker, "operator")
    config = {
        "trigger": "count",
        "count_window": 1,
        "publish_interval_s": 60,
        "thresholds": {"methane": {"enter": 5000, "exit": 3000, "min_duration_s": 0}},
        "generation": 1,
    }
    operator.publish(f"{ROOT}/config/gas-average", config, retain=True)
    operator.subscribe(f"{ROOT}/status/gas-average")
    subscriber = Client(own_broker, "operator", session_s=3600)
    subscriber.subscribe(f"{ROOT}/event/#")
    subscriber.subscribe(f"{ROOT}/status/gas-average")
    stage = StageProcess(
        "gas-average",
        {
            **own_broker.env_for("gas-average", GATEWAY),
            "EDGEGW_RECONNECT_INITIAL_S": "0.1",
            "EDGEGW_RECONNECT_MAX_S": "0.5",
        },
        tmp_path,
    )
    source: Client | None = None
    try:
        operator.wait_for(lambda m: m.payload == b"online", timeout_s=15)
        operator.close()
        time.sleep(AUTOSAVE_S + 0.5)  # sessions and the retained config are on disk
        source = Client(own_broker, "gas-replay")
        opened: dict[int, str] = {}  # mid of an opening reading -> its episode id
        kills: list[tuple[float, float]] = []
        level = dict.fromkeys(SENSORS, False)
        started = time.monotonic()
        next_kill = started + 2.0
        ts = time.time()
        while len(kills) < KILLS or time.monotonic() < next_kill:
            now = time.monotonic()
            if len(kills) < KILLS and now >= next_kill:
                own_broker.kill()
                time.sleep(0.5)
                own_broker.start()
                kills.append((now, time.monotonic()))
                next_kill = time.monotonic() + 2.5
                continue
            if not source.client.is_connected():
                time.sleep(0.01)
                continue
            for sensor in SENSORS:
                ts += 0.001
                level[sensor] = not level[sensor]
                body = reading(sensor, "methane", 9000.0 if level[sensor] else 100.0, ts=ts)
                info = source.client.publish(f"{ROOT}/sensor/gas/{sensor}", orjson.dumps(body), 1)
                if level[sensor]:
                    opened[info.mid] = f"{sensor}-methane-{round(ts * 1000)}"
            time.sleep(0.02)
        # Close every open episode, then let the stream settle.
        time.sleep(1.0)
        for sensor in SENSORS:
            ts += 0.001
            body = reading(sensor, "methane", 100.0, ts=ts)
            source.client.publish(f"{ROOT}/sensor/gas/{sensor}", orjson.dumps(body), 1)

        def kinds() -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for event in subscriber.received():
                found.setdefault(event["event_id"], set()).add(event["type"])
            return found

        surely_stored = {
            episode
            for mid, episode in opened.items()
            if mid in source.acked_at
            and not any(
                kill - AUTOSAVE_S - 0.5 <= source.acked_at[mid] <= back for kill, back in kills
            )
        }
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = kinds()
            complete = all(found.get(e) == {"new", "end"} for e in surely_stored)
            if complete and all(types == {"new", "end"} for types in found.values()):
                break
            time.sleep(0.5)
        found = kinds()
        assert len(surely_stored) > 100, len(surely_stored)
        half = {episode: sorted(types) for episode, types in found.items() if len(types) != 2}
        assert not half, f"{len(half)} episodes lost their new or end: {list(half.items())[:5]}"
        missing = surely_stored - found.keys()
        assert not missing, f"{len(missing)} episodes lost both events: {sorted(missing)[:5]}"
        assert stage.poll() is None
        # A publish into the dead connection fails at once: the stage is back
        # within its reconnect backoff, not after a 10 s PUBACK timeout.
        for _, back in kills:
            assert any(back <= at <= back + RECONNECTED_WITHIN_S for at in subscriber.online_at), (
                back,
                subscriber.online_at,
            )
    finally:
        if source is not None:
            source.close()
        subscriber.close()
        stage.stop()
