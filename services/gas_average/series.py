"""All series (sensor x gas) the stage follows: the pure heart of gas-average.

`observe()` takes one reading and says what to publish: an average (at most
every `publish_interval_s` per series) and an episode change, if any.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.envelope import lifecycle_message
from schemas.gas import Gas, GasAverage, GasEvent, GasReading
from schemas.topics import GAS_AVERAGE as STAGE
from services.gas_average.episodes import GasEpisode, GasEpisodeChange
from services.gas_average.moving_average import CountWindowAverage, TimeWindowAverage
from services.gas_average.settings import GasAverageConfig


class TooManySeries(Exception):
    """A reading would start a series beyond `max_series`."""


@dataclass
class _Series:
    sensor: str
    gas: Gas
    by_time: TimeWindowAverage
    by_count: CountWindowAverage
    episode: GasEpisode
    last_seen: float = 0.0
    last_published: float = float("-inf")
    last_value: float = 0.0


@dataclass(frozen=True)
class Outcome:
    average: GasAverage | None
    event: GasEvent | None


class SeriesBook:
    def __init__(self, config: GasAverageConfig, max_series: int) -> None:
        self._config = config
        self._max_series = max_series
        self._series: dict[tuple[str, Gas], _Series] = {}

    def reconfigure(self, config: GasAverageConfig) -> None:
        self._config = config
        for series in self._series.values():
            series.by_time.resize(config.time_window_s)
            series.by_count.resize(config.count_window)

    def __len__(self) -> int:
        return len(self._series)

    def observe(self, reading: GasReading, received_at: float) -> Outcome:
        series = self._series_for(reading)
        config = self._config
        series.by_time.add(reading.ts, reading.value)
        series.by_count.add(reading.value)
        series.last_seen = received_at
        series.last_value = reading.value
        average = None
        if reading.ts - series.last_published >= config.publish_interval_s:
            series.last_published = reading.ts
            average = self._average(series, reading.id)
        event = None
        threshold = config.thresholds.get(reading.gas)
        if threshold is not None:
            watched = series.by_time.mean if config.trigger == "time" else series.by_count.mean
            change = series.episode.observe(reading.ts, watched, threshold, config.update_step)
            if change is not None:
                event = self._event(series, change)
        return Outcome(average, event)

    def close_silent(self, now: float) -> list[GasEvent]:
        """End the open episodes of series not heard from in `silent_after_s`."""
        events = []
        for series in self._series.values():
            if series.episode.open and now - series.last_seen > self._config.silent_after_s:
                change = series.episode.close(now, series.by_time.mean)
                if change is not None:
                    events.append(self._event(series, change))
        return events

    def _series_for(self, reading: GasReading) -> _Series:
        key = (reading.sensor, reading.gas)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self._max_series:
                raise TooManySeries(f"more than {self._max_series} sensorxgas series")
            series = _Series(
                sensor=reading.sensor,
                gas=reading.gas,
                by_time=TimeWindowAverage(self._config.time_window_s),
                by_count=CountWindowAverage(self._config.count_window),
                episode=GasEpisode(f"{reading.sensor}-{reading.gas}"),
            )
            self._series[key] = series
        return series

    def _average(self, series: _Series, reading_id: str) -> GasAverage:
        return GasAverage(
            source=STAGE,
            sensor=series.sensor,
            gas=series.gas,
            time_window_s=series.by_time.window_s,
            time_average=series.by_time.mean,
            time_samples=series.by_time.count,
            count_window=series.by_count.size,
            count_average=series.by_count.mean,
            count_samples=series.by_count.count,
            last_value=series.last_value,
            reading_id=reading_id,
        )

    def _event(self, series: _Series, change: GasEpisodeChange) -> GasEvent:
        threshold = self._config.thresholds[series.gas]
        return lifecycle_message(
            GasEvent,
            STAGE,
            change,
            sensor=series.sensor,
            gas=series.gas,
            label=f"{series.gas}_high",
            severity=threshold.severity,
            value=change.value,
            peak=change.peak,
            threshold=threshold.enter,
        )
