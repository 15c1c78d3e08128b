"""Every config change gets an answer on status/<stage>/config (issue 13,
defect 3): a generation of 2^64-1 was accepted and every later config was
applied but never answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.harness.probe import Probe
from tests.harness.stage_process import StageProcess


def test_a_64_bit_generation_is_refused_with_an_answer_and_later_configs_are_answered(
    stage: Callable[..., StageProcess], probe: Callable[..., Probe], root: str
) -> None:
    observer = probe("operator")
    observer.subscribe(f"{root}/status/gas-average/config")
    observer.subscribe(f"{root}/status/gas-average")
    process = stage("gas-average")
    observer.wait_for(lambda m: m.topic == f"{root}/status/gas-average" and m.payload == b"online")
    operator = probe("operator")
    state_topic = f"{root}/status/gas-average/config"

    def answer_to(change: dict[str, Any]) -> dict[str, Any]:
        observer.clear()
        operator.publish(f"{root}/config/gas-average", change, retain=True)
        return observer.wait_for(lambda m: m.topic == state_topic, timeout_s=5)[-1].json()

    refused = answer_to({"generation": 2**64 - 1, "time_window_s": 20})
    assert refused["status"] == "rejected" and refused["errors"][0]["field"] == "generation"
    assert refused["generation"] == 0 and refused["applied"]["time_window_s"] == 10

    accepted = answer_to({"time_window_s": 25})
    assert accepted["status"] == "accepted" and accepted["generation"] == 1
    assert accepted["applied"]["time_window_s"] == 25

    for change, field in (
        ({"generation": True, "time_window_s": 26}, "generation"),
        ({"time_window_s": "Infinity"}, "time_window_s"),
        ({"time_window_s": 1e300}, "time_window_s"),
        ({"time_window_s": 27, "pad": "x" * 70_000}, "payload"),  # over the 64 KiB limit
    ):
        answer = answer_to(change)
        assert answer["status"] == "rejected" and answer["errors"][0]["field"] == field, answer
        assert answer["generation"] == 1 and answer["applied"]["time_window_s"] == 25

    last = answer_to({"time_window_s": 30, "generation": 2**63 - 1})
    assert last["status"] == "accepted" and last["generation"] == 2**63 - 1
    after = answer_to({"time_window_s": 31})
    assert after["status"] == "accepted" and after["applied"]["time_window_s"] == 31
    assert process.poll() is None
