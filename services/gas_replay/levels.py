"""The QoS levels a gas sensor offers: how often it is sampled (simulated)
or forwarded (trace).

Utility per gas and period comes from the profile table
(`gas_levels.json`, written by `python -m profiling.gas`,
see there for how it is measured and how to regenerate it). Cost is the
real size of one reading on the wire (JSON payload + topic + MQTT header)
times readings per second.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from schemas.analytics import GasKnobParams
from schemas.envelope import Model
from schemas.gas import Gas, GasReading
from schemas.qos import QosLevel
from schemas.topic_spec import publish_bytes
from schemas.topics import GAS_READING, GAS_REPLAY

PROFILE_PATH = Path(__file__).with_name("gas_levels.json")


class ProfiledLevel(Model):
    period_s: float = Field(gt=0)
    utility: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1, description="leak episodes detected / full-rate run")
    mean_delay_s: float = Field(ge=0, description="mean extra alarm delay vs the full-rate run")
    mean_abs_error: float = Field(ge=0, description="of the moving average, / alarm threshold")


class GasProfile(Model):
    generated_by: str
    reference_period_s: float = Field(gt=0)
    seeds: list[int]
    hours_per_seed: float = Field(gt=0)
    leaks_per_hour: float = Field(ge=0)
    latency_half_life_s: float = Field(gt=0)
    gases: dict[Gas, list[ProfiledLevel]]


def load_profile(path: Path = PROFILE_PATH) -> GasProfile:
    return GasProfile.model_validate_json(path.read_bytes())


def reading_bytes(root: str, sensor: str, gas: Gas) -> int:
    """Bytes one reading of this sensor puts on the wire (a typical value)."""
    # Fixed id and time of typical lengths, so the cost is the same every run.
    sample = GasReading(
        source=GAS_REPLAY,
        sensor=sensor,
        gas=gas,
        value=1234.5678,
        ts=1_800_000_000.123456,
        id="0" * 32,
    )
    topic = GAS_READING.topic(root, sensor=sensor)
    return publish_bytes(topic, sample.to_bytes())


def sensor_levels(
    profile: GasProfile, root: str, sensor: str, gas: Gas, finest_period_s: float = 0.0
) -> list[QosLevel]:
    """Every profiled period not finer than `finest_period_s` (a trace cannot
    be forwarded faster than it was recorded); at least the coarsest one."""
    table = profile.gases.get(gas) or profile.gases[next(iter(profile.gases))]
    usable = [row for row in table if row.period_s >= finest_period_s - 1e-9] or [table[-1]]
    size_bits = reading_bytes(root, sensor, gas) * 8
    return [
        QosLevel(
            name=f"every-{row.period_s:g}s",
            params=GasKnobParams(sample_period_s=row.period_s).model_dump(),
            cost_kbps=round(size_bits / row.period_s / 1000, 4),
            utility=row.utility,
        )
        for row in usable
    ]
