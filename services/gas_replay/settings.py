"""Settings of gas-replay."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from schemas.gas import Gas
from services.common.settings import StageSettings

KNOWN_GASES: frozenset[str] = frozenset(Gas.__args__)  # type: ignore[attr-defined]


class GasReplaySettings(StageSettings):
    trace_path: Path | None = Field(default=None, description="CSV to replay; none: simulate")
    speed: float = Field(default=1.0, ge=0, description="1 real time, 10 ten times faster, 0 max")
    loop: bool = Field(default=False, description="replay the trace again at its end")
    sensors: str = Field(
        default="kitchen:co,kitchen:smoke,boiler-room:methane,garage:lpg",
        description="simulated sensors as sensor:gas pairs, comma separated",
    )
    sample_period_s: float = Field(default=1.0, gt=0)
    leak_rate_per_hour: float = Field(default=2.0, ge=0, description="mean leaks per sensor-hour")
    first_leak_after_s: float | None = Field(
        default=None, ge=0, description="start one leak on the first sensor at this time"
    )
    seed: int | None = None
    max_readings: int = Field(default=0, ge=0, description="stop after this many; 0: never")
    publish_window: int = Field(
        default=64, ge=1, le=10_000, description="QoS 1 publishes in flight"
    )

    @field_validator("trace_path")
    @classmethod
    def _trace_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("sensors")
    @classmethod
    def _sensor_pairs(cls, value: str) -> str:
        for pair in value.split(","):
            sensor, _, gas = pair.strip().partition(":")
            if not sensor or gas not in KNOWN_GASES:
                raise ValueError(f"{pair!r} is not sensor:gas with gas in {sorted(KNOWN_GASES)}")
        return value

    def sensor_pairs(self) -> list[tuple[str, Gas]]:
        pairs = []
        for pair in self.sensors.split(","):
            sensor, _, gas = pair.strip().partition(":")
            pairs.append((sensor, gas))
        return pairs  # type: ignore[return-value]
