"""The topic registry and the ACL generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.generate import acl_text, render_conf
from schemas.topics import GAS_READING, REGISTRY, SELF, STAGES, STATUS, TopicError

REPO = Path(__file__).resolve().parents[2]


def test_committed_acl_is_the_generated_one() -> None:
    assert (REPO / "broker" / "acl").read_text() == acl_text(), (
        "broker/acl is stale: run `python -m broker.generate acl > broker/acl`"
    )


def test_acl_grants_each_stage_only_its_registry_topics() -> None:
    sections = {
        block.splitlines()[0].removeprefix("user "): block.splitlines()[1:]
        for block in acl_text().split("\n\n")
        if block.startswith("user ")
    }
    assert "topic read edgegw/+/sensor/gas/+" in sections["gas-average"]
    assert "topic write edgegw/+/event/+" in sections["gas-average"]
    assert not any("alert" in line or "camera" in line for line in sections["gas-average"])
    # Its own status: written, and read to say `online` again for its replicas.
    assert "topic readwrite edgegw/+/status/gas-average" in sections["gas-average"]
    assert not any("status/gas-replay" in line for line in sections["gas-average"])
    assert "topic readwrite edgegw/+/config/+" in sections["operator"]


def test_names_are_unique_and_self_topics_take_a_stage() -> None:
    assert len({spec.name for spec in REGISTRY}) == len(REGISTRY)
    for spec in REGISTRY:
        if SELF in spec.publishers | spec.subscribers:
            assert "stage" in spec.params, spec.name


@given(st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True))
def test_topic_and_match_round_trip(sensor: str) -> None:
    topic = GAS_READING.topic("edgegw/gw1", sensor=sensor)
    assert GAS_READING.match("edgegw/gw1", topic) == {"sensor": sensor}
    assert GAS_READING.match("edgegw/+", topic) == {"sensor": sensor}
    assert STATUS.match("edgegw/gw1", topic) is None


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "x" * 65, "é"])
def test_a_parameter_that_is_not_one_topic_level_is_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        GAS_READING.topic("edgegw/gw1", sensor=bad)


def test_permissions_follow_the_registry() -> None:
    assert GAS_READING.may_publish("gas-replay", {})
    assert not GAS_READING.may_publish("gas-average", {})
    assert STATUS.may_publish("gas-average", {"stage": "gas-average"})
    assert not STATUS.may_publish("gas-average", {"stage": "gas-replay"})
    assert all(stage.replace("-", "").isalpha() for stage in STAGES)


def test_rendered_config_keeps_the_policy_and_swaps_local_paths(tmp_path: Path) -> None:
    base = (REPO / "broker" / "mosquitto.conf").read_text()
    rendered = render_conf(base, port=18830, directory=tmp_path, run_as="me", bind="127.0.0.1")
    lines = rendered.splitlines()
    assert "listener 18830 127.0.0.1" in lines
    assert f"acl_file {tmp_path / 'acl'}" in lines
    assert "allow_anonymous false" in lines and "autosave_interval 1" in lines
    assert "user me" in lines
