"""The topic registry and the ACL generated from it."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import dynsec
from broker.generate import acl_text, dynsec_config, grants, render_conf
from schemas.topics import (
    ALERT_FORWARDER,
    GAS_READING,
    OBJECT_DETECTOR,
    OPERATOR,
    REGISTRY,
    SELF,
    STAGES,
    STATUS,
    USERS,
    TopicError,
)

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
    assert f"plugin_opt_config_file {tmp_path / 'data' / 'dynamic-security.json'}" in lines
    assert any(line.endswith("/mosquitto_dynamic_security.so") for line in lines)
    assert not any(line.startswith(("acl_file", "password_file")) for line in lines)
    assert "allow_anonymous false" in lines and "autosave_interval 1" in lines
    assert "user me" in lines


def _config() -> dict[str, Any]:
    return dynsec_config({user: f"pw-{user}" for user in dynsec.identities()})


def test_each_role_carries_exactly_the_acl_grants() -> None:
    roles = {role["rolename"]: role["acls"] for role in _config()["roles"]}
    assert set(roles) == {*USERS, dynsec.ADMIN_ROLE, dynsec.PROBE_ROLE}
    for user in USERS:
        carried: dict[str, set[str]] = {}
        for acl in roles[user]:
            assert acl["allow"] is True
            kind = {"publishClientSend": "publish", "publishClientReceive": "subscribe"}
            if acl["acltype"] in kind:
                carried.setdefault(acl["topic"], set()).add(kind[acl["acltype"]])
        assert carried == {topic: set(kinds) for topic, kinds in grants(user).items()}, user
        patterns = {a["topic"] for a in roles[user] if a["acltype"] == "subscribePattern"}
        readable = {t for t, kinds in grants(user).items() if "subscribe" in kinds}
        shared = {f"$share/+/{t}" for t in readable}
        assert patterns == readable | shared | ({"#"} if user == OPERATOR else set()), user
    admin_topics = {acl["topic"] for acl in roles[dynsec.ADMIN_ROLE]}
    assert admin_topics == {dynsec.CONTROL_TOPIC, dynsec.CONTROL_TOPIC + "/response"}
    # The broker's healthcheck: one $SYS topic, by its literal name, read only.
    assert {(acl["acltype"], acl["topic"]) for acl in roles[dynsec.PROBE_ROLE]} == {
        ("subscribeLiteral", "$SYS/broker/uptime"),
        ("publishClientReceive", "$SYS/broker/uptime"),
    }


def test_default_access_is_deny_and_stage_identities_are_bound() -> None:
    config = _config()
    defaults = {acl["acltype"]: acl["allow"] for acl in config["defaultACLAccess"]}
    assert defaults == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    clients = {client["username"]: client for client in config["clients"]}
    for stage in STAGES:
        assert clients[stage]["clientid"] == stage
        assert clients[stage]["roles"] == [{"rolename": stage}]
    assert [f"{OBJECT_DETECTOR}.{k}" in clients for k in (1, 2, 3, 4)] == [True] * 4
    assert clients[f"{ALERT_FORWARDER}.aux"]["clientid"] == f"{ALERT_FORWARDER}.aux"
    for stage in STAGES:  # the health probe's own identity, beside the stage's
        assert clients[f"{stage}.health"]["clientid"] == f"{stage}.health"
        assert clients[f"{stage}.health"]["roles"] == [{"rolename": stage}]
    assert dynsec.password_owner(f"{OBJECT_DETECTOR}.2.health") == f"{OBJECT_DETECTOR}.2"
    assert clients[dynsec.ADMIN]["clientid"] == dynsec.ADMIN
    assert clients[dynsec.PROBE]["clientid"] == dynsec.PROBE
    assert clients[dynsec.PROBE]["roles"] == [{"rolename": dynsec.PROBE_ROLE}]
    assert "clientid" not in clients[OPERATOR]  # the administrator's CLI: random ids
    # Every client id is bound to at most one identity.
    bound = [c["clientid"] for c in clients.values() if "clientid" in c]
    assert len(bound) == len(set(bound))


def test_password_hashes_are_pbkdf2_sha512_in_the_plugin_format() -> None:
    entry = dynsec.hash_password("secret", salt=bytes(range(12)))
    expected = hashlib.pbkdf2_hmac("sha512", b"secret", bytes(range(12)), 101, 64)
    assert base64.b64decode(entry["password"]) == expected
    assert base64.b64decode(entry["salt"]) == bytes(range(12))
    assert entry["iterations"] == 101
