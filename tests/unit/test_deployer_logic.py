"""The deployer's pure parts: request models, admission (image reference,
ceilings, declared topics) and the download plan against the disk budget."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.deploy import DeploySpec
from schemas.topics import ANALYTIC_FACING, DEPLOY_REQUEST, DEPLOY_STATE
from services.common.dynsec_control import DynsecControl
from services.common.settings import StageSettings
from services.deployer.admission import (
    GrantedTopic,
    Refused,
    granted_topics,
    limit_refusals,
    parse_image,
)
from services.deployer.identities import DynsecIdentities, create_commands
from services.deployer.layers import Layer, RemoteImage, disk_refusal, plan_download
from services.deployer.settings import Ceilings
from tests.unit.deploy_examples import DEPLOY_EXAMPLES

REGISTRY = "127.0.0.1:5000"
ROOT = "edgegw/gw1"


def spec(**fields: object) -> DeploySpec:
    base: dict[str, object] = {
        "analytic": "counter",
        "image": "edgegw-analytics/hello:1",
        "upload_saving_kbps": 10,
    }
    return DeploySpec.model_validate({**base, **fields})


def _output_and_knob_granted() -> list[GrantedTopic]:
    """The topics of an analytic that publishes its output and follows its knob."""
    declared = [
        {"spec": "analytic_output", "direction": "publish"},
        {"spec": "qos_knob", "direction": "subscribe"},
    ]
    return granted_topics(spec(topics=declared), ROOT)


@pytest.mark.parametrize(
    ("image", "repository", "tag", "digest"),
    [
        ("edgegw-analytics/hello:1", "edgegw-analytics/hello", "1", None),
        ("hello", "hello", None, None),
        (f"{REGISTRY}/a/b:v2", "a/b", "v2", None),
        ("a/b@sha256:" + "0" * 64, "a/b", None, "sha256:" + "0" * 64),
        ("a/b:7@sha256:" + "1" * 64, "a/b", "7", "sha256:" + "1" * 64),
    ],
)
def test_image_references_resolve_in_the_gateways_registry(
    image: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_image(spec(image=image).image, REGISTRY)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        REGISTRY,
        repository,
        tag,
        digest,
    )
    assert ref.full.startswith(f"{REGISTRY}/{repository}")
    assert ref.reference == (digest or tag or "latest")


def test_a_reference_to_another_registry_is_refused() -> None:
    with pytest.raises(Refused, match=r"registry ghcr\.io is not this gateway's"):
        parse_image("ghcr.io/someone/miner:1", REGISTRY)


@pytest.mark.parametrize("image", ["UPPER/case", "a//b", "a:b:c", "x@sha256:short", "", "a b"])
def test_malformed_references_are_invalid_requests(image: str) -> None:
    with pytest.raises(ValidationError):
        spec(image=image)


def test_limits_above_the_ceilings_are_refused_each_naming_its_field() -> None:
    ceilings = Ceilings(max_cpus=1, max_memory_mb=128, max_pids=64, max_lifetime_s=3600)
    found = limit_refusals(
        spec(limits={"cpus": 2, "memory_mb": 256, "pids": 100}, lifetime_s=7200), ceilings
    )
    fields = [refusal.split(":")[0] for refusal in found]
    assert fields == ["limits.cpus", "limits.memory_mb", "limits.pids", "lifetime_s"]
    assert limit_refusals(spec(lifetime_s=60), ceilings) == []
    # A gateway with a lifetime ceiling refuses an analytic that asks for none.
    assert limit_refusals(spec(), ceilings) == ["lifetime_s: None above this gateway's 3600.0"]
    # Only an analytic stage may be deployed, never the deployer or the bridge.
    assert limit_refusals(spec(stage="audio-classifier"), Ceilings()) == []
    assert limit_refusals(spec(stage="deployer"), Ceilings())[0].startswith("stage: 'deployer'")


def test_environment_the_deployer_sets_cannot_be_overridden() -> None:
    for name in ("EDGEGW_MQTT_HOST", "EDGEGW_TOPIC_ROOT", "EDGEGW_ANALYTIC", "EDGEGW_GATEWAY_ID"):
        with pytest.raises(ValidationError, match=f"{name}: set by the deployer"):
            spec(environment={name: "evil"})
    assert spec(environment={"EDGEGW_MIC": "m2"}).environment == {"EDGEGW_MIC": "m2"}
    with pytest.raises(ValidationError, match="environment name"):
        spec(environment={"lower": "x"})


def test_declared_topics_become_the_analytics_own_concrete_topics() -> None:
    granted = _output_and_knob_granted()
    assert [(g.env_name, g.topic) for g in granted] == [
        ("EDGEGW_TOPIC_ANALYTIC_OUTPUT", f"{ROOT}/analytic/counter/output"),
        ("EDGEGW_TOPIC_QOS_KNOB", f"{ROOT}/qos/counter"),
    ]


@pytest.mark.parametrize(
    ("declared", "field"),
    [
        ({"spec": "alert", "direction": "publish"}, "topics.0.spec"),
        ({"spec": "qos_knob", "direction": "publish"}, "topics.0.direction"),
        (
            {"spec": "analytic_output", "direction": "publish", "params": {"analytic": "other"}},
            "topics.0.params.analytic",
        ),
        (
            {"spec": "analytic_output", "direction": "publish", "params": {"x": "1"}},
            "topics.0.params",
        ),
    ],
)
def test_undeclarable_topics_are_refused_naming_the_field(
    declared: dict[str, object], field: str
) -> None:
    with pytest.raises(Refused, match=f"^{field.replace('.', '[.]')}"):
        granted_topics(spec(topics=[declared]), ROOT)


def test_every_analytic_facing_template_is_open_to_deployed_analytics() -> None:
    for spec_, direction in ANALYTIC_FACING.values():
        users = spec_.publishers if direction == "publish" else spec_.subscribers
        assert "analytic" in users, spec_.name


def test_every_deploy_message_has_a_valid_example_that_round_trips() -> None:
    for spec in (DEPLOY_REQUEST, DEPLOY_STATE):
        for model in spec.models:
            example = orjson.dumps({"ts": 1.8e9, "id": "m1", **DEPLOY_EXAMPLES[model.__name__]})
            message = spec.decode(example)
            assert isinstance(message, model)
            assert spec.decode(message.to_bytes()) == message


def test_requests_decode_by_action() -> None:
    stop = DEPLOY_REQUEST.decode(b'{"source":"operator","action":"stop","analytic":"a"}')
    assert type(stop).__name__ == "LifecycleRequest"
    with pytest.raises(ValidationError):
        DEPLOY_REQUEST.decode(b'{"source":"operator","action":"explode","analytic":"a"}')


def _image(*layers: tuple[str, int]) -> RemoteImage:
    return RemoteImage("sha256:m", tuple(Layer(f"sha256:c{d}", size, d) for d, size in layers))


def test_the_plan_downloads_only_the_layers_not_on_disk() -> None:
    image = _image(("base", 1000), ("runtime", 500), ("code", 10))
    plan = plan_download(image, {"base", "runtime", "other"})
    assert (plan.bytes_total, plan.layers_total, plan.layers_cached) == (10, 3, 2)
    whole = plan_download(image, set())
    assert whole.bytes_total == 1510 and whole.layers_cached == 0


@given(
    sizes=st.lists(st.integers(0, 10**9), min_size=1, max_size=8),
    cached=st.sets(st.integers(0, 7)),
    used=st.integers(0, 10**10),
    budget=st.integers(1, 10**10),
    expansion=st.floats(1, 4),
)
def test_the_disk_check_refuses_exactly_the_pulls_over_budget(
    sizes: list[int], cached: set[int], used: int, budget: int, expansion: float
) -> None:
    image = _image(*((f"l{i}", size) for i, size in enumerate(sizes)))
    plan = plan_download(image, {f"l{i}" for i in cached})
    assert plan.bytes_total == sum(s for i, s in enumerate(sizes) if i not in cached)
    refusal = disk_refusal(plan, used, budget, expansion)
    assert (refusal is None) == (used + int(plan.bytes_total * expansion) <= budget)


def test_an_analytics_dynsec_identity_is_bound_to_its_client_id_and_grants_its_topics() -> None:
    granted = _output_and_knob_granted()
    commands = create_commands("analytic.gw1.counter", "pw", granted)
    role = next(c for c in commands if c["command"] == "createRole")
    assert [(acl["acltype"], acl["topic"]) for acl in role["acls"]] == [
        ("publishClientSend", f"{ROOT}/analytic/counter/output"),
        ("subscribePattern", f"{ROOT}/qos/counter"),
        ("publishClientReceive", f"{ROOT}/qos/counter"),
    ]
    client = commands[-1]
    assert client["command"] == "createClient"
    assert client["clientid"] == client["username"] == "analytic.gw1.counter"
    assert client["roles"] == [{"rolename": "analytic.gw1.counter"}]
    # An analytic that runs an edgegw stage also gets that stage's registry role.
    staged = create_commands("analytic.gw1.audio.m2", "pw", [], "audio-classifier")[-1]
    assert staged["roles"] == [
        {"rolename": "analytic.gw1.audio.m2"},
        {"rolename": "audio-classifier"},
    ]


def test_an_analytics_password_is_stable_and_its_own() -> None:
    control = DynsecControl(StageSettings(), "dynsec-admin", "secret")
    identities = DynsecIdentities(control, "gw1", "secret")
    first = identities.password(identities.username("a"))
    assert first == DynsecIdentities(control, "gw1", "secret").password("analytic.gw1.a")
    assert first != identities.password(identities.username("b"))
    assert first != DynsecIdentities(control, "gw1", "other").password("analytic.gw1.a")
    assert len(first) >= 40
