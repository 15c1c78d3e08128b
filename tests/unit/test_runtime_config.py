"""Evaluation of retained config payloads (no broker: the door is only built)."""

# The tests below drive RuntimeConfig's handler and door directly, without a broker.
# ruff: noqa: SLF001

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas.service import ConfigState
from schemas.topics import CONFIG
from services.alert_forwarder.settings import AlertForwarderConfig
from services.audio_classifier.settings import AudioClassifierConfig
from services.bandwidth_allocator.settings import AllocatorConfig
from services.camera_capture.settings import CaptureConfig
from services.cloud_bridge.settings import CloudBridgeConfig
from services.common.door import MqttDoor, Received
from services.common.runtime_config import RuntimeConfig, deep_merge
from services.common.settings import StageSettings
from services.common.subscriptions import decode_payload
from services.gas_average.settings import GasAverageConfig
from services.object_detector.settings import DetectorConfig


@pytest.fixture
def config() -> RuntimeConfig[GasAverageConfig]:
    door = MqttDoor(StageSettings(), "gas-average")
    return RuntimeConfig(door, GasAverageConfig, GasAverageConfig(time_window_s=10))


async def test_a_partial_payload_overrides_only_its_fields(
    config: RuntimeConfig[GasAverageConfig],
) -> None:
    result, generation, errors = config.evaluate(b'{"count_window": 3, "generation": 4}')
    assert errors == [] and generation == 4
    assert result is not None and result.count_window == 3 and result.time_window_s == 10


async def test_an_empty_payload_is_the_startup_config(
    config: RuntimeConfig[GasAverageConfig],
) -> None:
    result, _, errors = config.evaluate(b"")
    assert errors == [] and result == GasAverageConfig(time_window_s=10)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"[1, 2]", "payload"),
        (b"{oops", "payload"),
        (b'{"generation": -1}', "generation"),
        (b'{"count_window": 0}', "count_window"),
        (b'{"thresholds": {"co": {"enter": 5, "exit": 9}}}', "thresholds.co"),
        (b'{"thresholds": {"radon": {"enter": 5, "exit": 1}}}', "thresholds.radon.[key]"),
        (b'{"surprise": 1}', "surprise"),
    ],
)
async def test_bad_payloads_are_refused_naming_the_field(
    config: RuntimeConfig[GasAverageConfig], payload: bytes, field: str
) -> None:
    result, _, errors = config.evaluate(payload)
    assert result is None
    assert errors[0].field == field, errors


@given(
    st.dictionaries(
        st.text(max_size=12), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5), max_size=5
    )
)
def test_any_json_object_is_either_accepted_or_refused_with_a_field(
    values: dict[str, object],
) -> None:
    async def check() -> None:
        door = MqttDoor(StageSettings(), "gas-average")
        config = RuntimeConfig(door, GasAverageConfig, GasAverageConfig())
        result, _, errors = config.evaluate(orjson.dumps(values))
        assert (result is None) == bool(errors)
        assert all(error.field for error in errors)

    import asyncio

    asyncio.run(check())


# -- every change is answered (issue 13, defect 3) ------------------------------

Published = list[tuple[str, object]]


def _recording(door: MqttDoor, fail_with: Exception | None = None) -> Published:
    """What the door was asked to publish (no broker here)."""
    sent: Published = []

    async def publish(spec, payload, **_params):  # type: ignore[no-untyped-def]
        if fail_with is not None:
            raise fail_with
        sent.append((spec.name, payload))

    async def dead_letter(topic: str, raw: bytes, reason: str) -> None:
        sent.append(("deadletter", reason))

    door.publish = publish  # type: ignore[method-assign]
    door.dead_letter = dead_letter  # type: ignore[method-assign]
    return sent


def _config_message(door: MqttDoor, raw: bytes) -> Received[bytes]:
    topic = CONFIG.topic(door.root, stage=door.user)
    return Received(topic, {"stage": door.user}, raw, raw, True, {})


def _answers(sent: Published) -> list[ConfigState]:
    return [payload for name, payload in sent if isinstance(payload, ConfigState)]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"generation": 18446744073709551615}', "generation"),
        (b'{"generation": 9223372036854775808}', "generation"),
        (b'{"generation": true}', "generation"),
        (b'{"generation": 3.0}', "generation"),
        (b'{"generation": "3"}', "generation"),
        # non-finite or absurd numbers
        (b'{"time_window_s": "Infinity"}', "time_window_s"),
        (b'{"time_window_s": 1e300}', "time_window_s"),
        (b'{"publish_interval_s": NaN}', "payload"),  # not JSON at all
        (b'{"silent_after_s": 1e300}', "silent_after_s"),
    ],
)
async def test_a_number_out_of_range_or_of_the_wrong_type_is_refused_naming_its_field(
    config: RuntimeConfig[GasAverageConfig], payload: bytes, field: str
) -> None:
    result, _, errors = config.evaluate(payload)
    assert result is None and errors and errors[0].field == field, errors


async def test_after_the_largest_generation_later_configs_are_still_answered(
    config: RuntimeConfig[GasAverageConfig],
) -> None:
    sent = _recording(config._door)
    await config._on_config(_config_message(config._door, b'{"generation": 9223372036854775807}'))
    await config._on_config(_config_message(config._door, b'{"count_window": 4}'))
    answers = _answers(sent)
    assert [a.status for a in answers] == ["accepted", "accepted"]
    assert answers[1].generation == 2**63 - 1 and config.current.count_window == 4
    assert all(ConfigState.from_bytes(a.to_bytes()) == a for a in answers)


async def test_a_failing_listener_rolls_back_and_the_answer_says_rejected(
    config: RuntimeConfig[GasAverageConfig],
) -> None:
    told: list[int] = []

    def listener(new: GasAverageConfig) -> None:
        told.append(new.count_window)
        if new.count_window == 3:
            raise ValueError("count_window 3 is not supported here")

    config.on_change(listener)
    sent = _recording(config._door)
    await config._on_config(_config_message(config._door, b'{"count_window": 3}'))
    [answer] = _answers(sent)
    assert answer.status == "rejected" and "not supported" in answer.errors[0].reason
    assert config.current == GasAverageConfig(time_window_s=10) and config.generation == 0
    assert answer.applied["count_window"] == 10 and answer.generation == 0
    assert told == [3, 10]  # told the new config, then the previous one again
    await config._on_config(_config_message(config._door, b'{"count_window": 5}'))
    assert [a.status for a in _answers(sent)] == ["rejected", "accepted"]
    assert config.generation == 1


async def test_an_oversize_config_reaches_the_handler_and_is_answered(
    config: RuntimeConfig[GasAverageConfig],
) -> None:
    door = config._door
    big = orjson.dumps({"count_window": 3, "pad": "x" * CONFIG.max_bytes})
    found = door._subscriptions.match(CONFIG.topic(door.root, stage=door.user))
    assert found is not None
    route, _ = found
    assert decode_payload(route.spec, big, take_oversize=route.take_oversize) == big
    sent = _recording(door)
    await config._on_config(_config_message(door, big))
    [answer] = _answers(sent)
    assert answer.status == "rejected" and answer.errors[0].field == "payload"
    assert "limit" in answer.errors[0].reason
    assert any(name == "deadletter" for name, _ in sent)


async def test_an_answer_that_fails_to_go_out_never_raises(
    config: RuntimeConfig[GasAverageConfig],
) -> None:
    _recording(config._door, fail_with=RuntimeError("boom"))
    await config._on_config(_config_message(config._door, b'{"count_window": 4}'))
    assert config.current.count_window == 4


async def test_a_model_level_validator_names_its_field() -> None:
    door = MqttDoor(StageSettings(), "bandwidth-allocator")
    allocator = RuntimeConfig(door, AllocatorConfig, AllocatorConfig())
    _, _, errors = allocator.evaluate(b'{"budget_floor_kbps": 500, "budget_ceiling_kbps": 100}')
    assert [e.field for e in errors] == ["budget_floor_kbps"]
    door = MqttDoor(StageSettings(), "alert-forwarder")
    forwarder = RuntimeConfig(door, AlertForwarderConfig, AlertForwarderConfig())
    _, _, errors = forwarder.evaluate(b'{"fusion": {"places": {"cam": "living room"}}}')
    assert [e.field for e in errors] == ["fusion.places['cam']"]
    _, _, errors = forwarder.evaluate(b'{"rules": {"rules": [{"zone_match": "all"}]}}')
    assert [e.field for e in errors] == ["rules.rules.0.zone_match"]


def _numeric_paths(values: dict[str, object], path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _numeric_paths(value, (*path, key))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield (*path, key)


RUNTIME_CONFIGS = [
    AlertForwarderConfig, AudioClassifierConfig, AllocatorConfig, CaptureConfig,
    CloudBridgeConfig, GasAverageConfig, DetectorConfig,
]  # fmt: skip


@pytest.mark.parametrize("model", RUNTIME_CONFIGS, ids=lambda m: m.__name__)
def test_every_number_of_every_runtime_config_refuses_infinity_and_absurd_values(
    model: type[BaseModel],
) -> None:
    """Issue 13, defect 2: "Infinity" or 1e300 for intervals, thresholds,
    cooldowns and the bridge budget, or 10^12 tracked events, were accepted."""
    base = model().model_dump()
    accepted = []
    for path in _numeric_paths(base):
        for bad in ("Infinity", "NaN", 1e300, 10**12):
            change: object = bad
            for key in reversed(path):
                change = {key: change}
            assert isinstance(change, dict)
            try:
                model.model_validate(deep_merge(base, change))
            except ValidationError:
                continue
            accepted.append((".".join(path), bad))
    assert accepted == []
