"""Moving averages, episodes and the series book of gas-average."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.gas import GasReading
from services.gas_average.episodes import GasEpisode
from services.gas_average.moving_average import CountWindowAverage, TimeWindowAverage
from services.gas_average.series import SeriesBook, TooManySeries
from services.gas_average.settings import GasAverageConfig, GasThreshold

values = st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200)


@given(values, st.integers(min_value=1, max_value=50))
def test_count_window_is_the_mean_of_the_last_n(samples: list[float], size: int) -> None:
    average = CountWindowAverage(size)
    for value in samples:
        average.add(value)
    assert average.mean == pytest.approx(statistics.fmean(samples[-size:]), rel=1e-9, abs=1e-6)


@given(values, st.floats(min_value=0.5, max_value=20))
def test_time_window_is_the_mean_of_the_recent_samples(samples: list[float], window: float) -> None:
    average = TimeWindowAverage(window)
    for index, value in enumerate(samples):
        average.add(index * 0.5, value)
    newest = (len(samples) - 1) * 0.5
    kept = [v for i, v in enumerate(samples) if i * 0.5 >= newest - window]
    assert average.count == len(kept)
    assert average.mean == pytest.approx(statistics.fmean(kept), rel=1e-9, abs=1e-6)


def test_resizing_a_count_window_keeps_the_newest() -> None:
    average = CountWindowAverage(5)
    for value in [1, 2, 3, 4, 5]:
        average.add(value)
    average.resize(2)
    assert average.mean == 4.5 and average.size == 2


CO = GasThreshold(enter=50, exit=30, min_duration_s=2)


def test_an_episode_needs_the_minimum_duration_then_ends_below_exit() -> None:
    episode = GasEpisode("k-co")
    assert episode.observe(0, 60, CO, 0.1) is None  # above, but not for 2 s yet
    assert episode.observe(1, 20, CO, 0.1) is None  # a spike: reset
    assert episode.observe(2, 60, CO, 0.1) is None
    new = episode.observe(4, 61, CO, 0.1)
    assert new is not None and new.type == "new" and new.start_ts == 2
    assert episode.observe(5, 40, CO, 0.1) is None  # between exit and enter: stays open
    update = episode.observe(6, 80, CO, 0.1)
    assert update is not None and update.type == "update" and update.peak == 80
    assert episode.observe(7, 82, CO, 0.1) is None  # rose less than 10 %
    end = episode.observe(8, 29, CO, 0.1)
    assert end is not None and end.type == "end" and end.end_ts == 8
    assert {new.event_id, update.event_id, end.event_id} == {new.event_id}
    assert [new.sequence, update.sequence, end.sequence] == [1, 2, 3]


@given(st.lists(st.floats(min_value=0, max_value=200), min_size=1, max_size=300))
def test_episodes_alternate_new_then_end_whatever_the_signal(signal: list[float]) -> None:
    episode = GasEpisode("s")
    kinds = []
    for t, value in enumerate(signal):
        change = episode.observe(float(t), value, CO, 0.1)
        if change is not None:
            kinds.append(change.type)
    opened_closed = [k for k in kinds if k != "update"]
    assert opened_closed == ["new", "end"] * (len(opened_closed) // 2) + (
        ["new"] if len(opened_closed) % 2 else []
    )


def test_threshold_with_exit_above_enter_is_refused_naming_both() -> None:
    with pytest.raises(ValueError, match="exit"):
        GasThreshold(enter=10, exit=20)


def _reading(sensor: str, value: float, ts: float) -> GasReading:
    return GasReading(source="t", sensor=sensor, gas="co", value=value, ts=ts)


def test_series_book_publishes_averages_at_the_interval_and_events_with_stable_ids() -> None:
    config = GasAverageConfig(time_window_s=2, publish_interval_s=1)
    book = SeriesBook(config, max_series=10)
    outcomes = [book.observe(_reading("k", 100.0, t * 0.5), t * 0.5) for t in range(20)]
    published = [o.average for o in outcomes if o.average is not None]
    assert len(published) == 10  # every second of source time
    events = [o.event for o in outcomes if o.event is not None]
    assert events[0] is not None and events[0].type == "new"
    assert events[0].id == f"{events[0].event_id}.1"
    silent = book.close_silent(now=10.0 + config.silent_after_s + 1)
    assert [e.type for e in silent] == ["end"]


def test_series_beyond_the_limit_are_refused() -> None:
    book = SeriesBook(GasAverageConfig(), max_series=2)
    book.observe(_reading("a", 1, 0), 0)
    book.observe(_reading("b", 1, 0), 0)
    with pytest.raises(TooManySeries):
        book.observe(_reading("c", 1, 0), 0)
