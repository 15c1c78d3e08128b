"""Evaluation of retained config payloads (no broker: the door is only built)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.door import MqttDoor
from services.common.runtime_config import RuntimeConfig
from services.common.settings import StageSettings
from services.gas_average.settings import GasAverageConfig


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
