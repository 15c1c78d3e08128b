"""The pure parts of the allocator stage (analytic book, measured budget,
planning, config) and of gas-replay's knob handling (levels, schedules,
profile), without a broker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from profiling.gas import (
    PERIODS_S,
    build_profile,
    compare,
    run_gas_average,
    simulate,
)
from schemas.alerts import UplinkUsage
from schemas.qos import PlanChoice, QosLevel, QosLevels, QosPlan
from services.bandwidth_allocator.book import AnalyticBook, TooManyAnalytics
from services.bandwidth_allocator.budget import changed_enough, next_measured_budget
from services.bandwidth_allocator.planning import changed_levels, make_plan
from services.bandwidth_allocator.settings import AllocatorConfig, BandwidthAllocatorSettings
from services.cli.qos_command import format_plan
from services.gas_replay.levels import load_profile, reading_bytes, sensor_levels
from services.gas_replay.schedule import SimulatedSchedule, TraceSchedule
from services.gas_replay.simulator import make_sensors
from services.gas_replay.trace import TraceRow


def offer(analytic: str, source: str, *levels: tuple[str, float, float]) -> QosLevels:
    return QosLevels(
        source=source,
        analytic=analytic,
        levels=[QosLevel(name=n, cost_kbps=c, utility=u) for n, c, u in levels],
    )


CAM = offer("camera.a", "camera-capture", ("low", 50, 0.3), ("mid", 200, 0.7), ("high", 800, 1))
MIC = offer("audio.m", "audio-capture", ("low", 16, 0.4), ("high", 128, 1.0))


# -- the analytic book ---------------------------------------------------------


def test_the_book_parks_a_stopped_stage_and_brings_it_back() -> None:
    book = AnalyticBook(max_analytics=10)
    assert book.offer(CAM) and book.offer(MIC)
    assert not book.offer(MIC)  # the retained copy again: nothing changed
    assert book.stage_status("audio-capture", online=False)
    assert [o.analytic for o in book.active()] == ["camera.a"]
    assert not book.stage_status("audio-capture", online=False)
    assert not book.stage_status("deployer", online=False)  # offers nothing
    assert book.stage_status("audio-capture", online=True)
    assert [o.analytic for o in book.active()] == ["audio.m", "camera.a"]
    assert book.withdraw("audio.m") and not book.withdraw("audio.m")
    assert [o.analytic for o in book.active()] == ["camera.a"]


def test_levels_of_an_offline_stage_wait_until_it_is_back() -> None:
    book = AnalyticBook(max_analytics=10)
    book.stage_status("audio-capture", online=False)
    assert not book.offer(MIC)
    assert book.active() == []
    assert book.stage_status("audio-capture", online=True)
    assert [o.analytic for o in book.active()] == ["audio.m"]


def test_the_book_refuses_analytics_past_its_cap() -> None:
    book = AnalyticBook(max_analytics=1)
    book.offer(CAM)
    book.offer(CAM)  # replacing is fine
    with pytest.raises(TooManyAnalytics):
        book.offer(MIC)


# -- the measured budget -------------------------------------------------------


def usage(used: float, spooled: int = 0, connected: bool = True) -> UplinkUsage:
    return UplinkUsage(
        source="cloud-bridge",
        budget_kbps=None,
        window_s=10,
        used_kbps=used,
        bytes_by_class={},
        spool_entries=spooled,
        spool_bytes=spooled * 100,
        cloud_connected=connected,
    )


def test_measured_budget_drops_to_goodput_on_backlog_and_probes_back_up() -> None:
    floor, ceiling, growth = 10.0, 1000.0, 1.25
    assert next_measured_budget(None, usage(50), floor, ceiling, growth) == ceiling
    assert next_measured_budget(None, usage(300, spooled=5), floor, ceiling, growth) == 300
    assert next_measured_budget(800, usage(300, spooled=5), floor, ceiling, growth) == 300
    # Backlog while uploading ~the whole budget: the bridge's own rate limit, hold.
    assert next_measured_budget(800, usage(760, spooled=5), floor, ceiling, growth) == 800
    assert next_measured_budget(300, usage(290), floor, ceiling, growth) == 375
    assert next_measured_budget(900, usage(290), floor, ceiling, growth) == ceiling
    assert next_measured_budget(300, usage(0, connected=False), floor, ceiling, growth) == floor
    assert next_measured_budget(300, usage(2, spooled=9), floor, ceiling, growth) == floor


def test_small_budget_moves_do_not_resolve() -> None:
    assert changed_enough(None, 5)
    assert not changed_enough(100, 101.5)
    assert changed_enough(100, 103)


# -- planning ------------------------------------------------------------------


def test_a_plan_weighs_analytics_and_names_each_choice() -> None:
    config = AllocatorConfig(weights={"audio.m": 0.0})
    plan = make_plan([MIC, CAM], config, 900, plan_id="p")
    assert plan.summary.feasible and plan.summary.solver == "dp"
    assert {a: level.name for a, level in plan.levels.items()} == {
        "audio.m": "low",  # weight 0: its cheapest level frees budget for the camera
        "camera.a": "high",
    }
    assert plan.summary.cost_kbps == 816 and plan.summary.total_utility == 1.0


def test_an_unknown_solver_or_a_tiny_budget_is_an_answer_not_a_crash() -> None:
    config = AllocatorConfig()
    unknown = make_plan([CAM], config, 900, solver="magic", plan_id="p", dry_run=True)
    assert not unknown.summary.feasible and "unknown solver" in unknown.summary.reason
    assert unknown.summary.dry_run and unknown.levels == {}
    tiny = make_plan([CAM, MIC], config, 10, plan_id="p")
    assert not tiny.summary.feasible and "below" in tiny.summary.reason
    assert {a: level.name for a, level in tiny.levels.items()} == {
        "camera.a": "low",
        "audio.m": "low",
    }
    empty = make_plan([], config, 10, plan_id="p")
    assert empty.summary.feasible and empty.summary.choices == []


# A detector whose cloud copy needs the camera's frames: raw upload per level.
DETECTOR = QosLevels(
    source="cloud-bridge",
    analytic="detector.b",
    levels=[
        QosLevel(name="low", cost_kbps=10, raw_cost_kbps=300, utility=0.5),
        QosLevel(name="high", cost_kbps=40, raw_cost_kbps=1200, utility=1.0),
    ],
)


def test_a_cloud_hosted_analytic_is_priced_by_its_raw_upload_in_the_same_budget() -> None:
    config = AllocatorConfig()
    on_gateway = make_plan([DETECTOR, CAM], config, 900, plan_id="p")
    chosen = {c.analytic: (c.level, c.cost_kbps, c.hosted) for c in on_gateway.summary.choices}
    assert chosen == {"detector.b": ("high", 40, "gateway"), "camera.a": ("high", 800, "gateway")}
    in_cloud = make_plan([DETECTOR, CAM], config, 900, plan_id="p", hosting={"detector.b": "cloud"})
    chosen = {c.analytic: (c.level, c.cost_kbps, c.hosted) for c in in_cloud.summary.choices}
    # Its raw frames take 300 kbit/s even at its low level: the camera drops to mid.
    assert chosen == {"detector.b": ("low", 300, "cloud"), "camera.a": ("mid", 200, "gateway")}
    assert in_cloud.summary.cost_kbps == 500
    # A level without a raw-upload model costs the same wherever it runs.
    assert make_plan([CAM], config, 900, plan_id="p", hosting={"camera.a": "cloud"}).levels == (
        make_plan([CAM], config, 900, plan_id="p").levels
    )


def test_the_book_reprices_only_an_offered_analytic_whose_hosting_changed() -> None:
    book = AnalyticBook(max_analytics=2)
    assert not book.host("detector.b", "cloud")  # not offered yet: nothing to re-plan
    assert book.offer(DETECTOR)
    assert book.hosting() == {"detector.b": "cloud"}
    assert not book.host("detector.b", "cloud")
    assert book.host("detector.b", "gateway")
    assert not book.host("detector.b", None)  # forgotten: the gateway's price, unchanged
    assert book.host("detector.b", "cloud") and book.host("detector.b", None)
    assert book.stage_status("cloud-bridge", online=False)
    assert not book.host("detector.b", "gateway")  # parked: no re-plan until it is back
    assert book.host("camera.x", "cloud") is False
    with pytest.raises(TooManyAnalytics):
        book.host("gas.z", "cloud")


def test_only_changed_levels_are_republished() -> None:
    plan = make_plan([CAM, MIC], AllocatorConfig(), 2000, plan_id="p").levels
    assert changed_levels(plan, {}) == plan
    assert changed_levels(plan, plan) == {}
    assert changed_levels(plan, {**plan, "camera.a": CAM.levels[0]}) == {"camera.a": CAM.levels[2]}


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="solver"):
        AllocatorConfig(solver="magic")
    with pytest.raises(ValidationError, match="budget_floor_kbps"):
        AllocatorConfig(budget_floor_kbps=100, budget_ceiling_kbps=10)
    with pytest.raises(ValidationError, match="weight of"):
        AllocatorConfig(weights={"x": -1})
    startup = BandwidthAllocatorSettings(budget_kbps=42, solver="fptas").startup_config()
    assert startup.budget_kbps == 42 and startup.solver == "fptas" and startup.weights == {}


def test_the_plan_table_lists_every_choice() -> None:
    plan = QosPlan(
        source="bandwidth-allocator",
        plan_id="p",
        dry_run=True,
        solver="dp",
        budget_kbps=256,
        cost_kbps=207.7,
        total_utility=2.6,
        feasible=True,
        solve_ms=0.4,
        choices=[
            PlanChoice(analytic="camera.a", level="mid", cost_kbps=200, utility=0.8, weight=2),
            PlanChoice(analytic="gas.k", level="every-1s", cost_kbps=7.7, utility=1, weight=1),
        ],
    )
    lines = format_plan(plan).splitlines()
    assert lines[0].split() == ["analytic", "level", "kbit/s", "utility", "weight"]
    assert lines[2].split() == ["camera.a", "mid", "200.0", "0.800", "2"]
    assert "budget 256 kbit/s" in lines[5] and "mean 0.867" in lines[5]


# -- gas-replay levels and schedules --------------------------------------------


def test_gas_levels_cost_what_a_reading_weighs_and_utility_falls_with_the_period() -> None:
    profile = load_profile()
    levels = sensor_levels(profile, "edgegw/gw1", "kitchen", "co")
    bits = reading_bytes("edgegw/gw1", "kitchen", "co") * 8
    assert [lv.params["sample_period_s"] for lv in levels] == list(PERIODS_S)
    assert levels[0].cost_kbps == pytest.approx(bits / 0.25 / 1000, rel=1e-3)
    assert levels[0].utility == 1.0
    utilities = [lv.utility for lv in levels]
    assert utilities == sorted(utilities, reverse=True) and utilities[-1] < 0.9
    traced = sensor_levels(profile, "edgegw/gw1", "kitchen", "co", finest_period_s=1.0)
    assert [lv.params["sample_period_s"] for lv in traced] == [1.0, 2.0, 5.0, 10.0]


def test_a_simulated_sensor_is_sampled_at_its_knob_period_from_its_last_sample() -> None:
    periods = {"a": 1.0, "b": 0.5}
    sensors = make_sensors([("a", "co"), ("b", "smoke")], 0.0, seed=1)
    schedule = SimulatedSchedule(sensors, periods.__getitem__)
    seen = [schedule.pop() for _ in range(6)]
    assert [(d.sensor, d.offset_s) for d in seen if d is not None][:6] == [
        ("a", 0.0),
        ("b", 0.0),
        ("b", 0.5),
        ("a", 1.0),
        ("b", 1.0),
        ("b", 1.5),
    ]
    periods["a"] = 10.0  # a slower knob for a: its next sample moves out
    schedule.reschedule(now_s=1.6)
    upcoming = [schedule.pop() for _ in range(4)]
    assert [(d.sensor, d.offset_s) for d in upcoming if d is not None] == [
        ("b", 2.0),
        ("b", 2.5),
        ("b", 3.0),
        ("b", 3.5),
    ]
    periods["a"] = 0.25  # faster again: not in the past, not after 11 s
    schedule.reschedule(now_s=3.6)
    assert schedule.peek() == 3.6


def test_a_trace_is_forwarded_decimated_to_the_knob_period() -> None:
    rows = [
        (t * 0.5, TraceRow(t * 0.5, sensor, "co", 1.0)) for t in range(8) for sensor in ("a", "b")
    ]
    periods = {"a": 2.0, "b": 0.0}
    schedule = TraceSchedule(iter(rows), periods.__getitem__)
    forwarded = []
    while schedule.peek() is not None:
        due = schedule.pop()
        assert due is not None
        forwarded.append((due.sensor, due.offset_s))
    assert [t for s, t in forwarded if s == "a"] == [0.0, 2.0]
    assert len([t for s, t in forwarded if s == "b"]) == 8


# -- the gas profile -------------------------------------------------------------


def test_the_full_rate_run_is_the_reference_and_slower_ones_lose_utility() -> None:
    values = simulate("co", seed=3, hours=0.25, leaks_per_hour=16)
    reference = run_gas_average("co", values, 0.25)
    assert reference.episodes  # leaks happened, so recall means something
    itself = compare(reference, reference)
    assert itself.detected == itself.reference_episodes and itself.abs_error_sum == 0
    profile = build_profile(["co"], seeds=[3], hours=0.25, leaks_per_hour=16)
    utilities = [level.utility for level in profile.gases["co"]]
    assert utilities[0] == 1.0 and all(0 <= u <= 1 for u in utilities)
    assert utilities[-1] < utilities[0]
    again = build_profile(["co"], seeds=[3], hours=0.25, leaks_per_hour=16)
    assert again == profile  # seeded: the committed table can be regenerated exactly
