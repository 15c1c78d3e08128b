"""Analytic names and knob parameters come from schemas/analytics.py, and each
knob is defined once: a stage's start-up settings extend its runtime config
and declare none of its fields again."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import typing
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import services
from schemas.analytics import (
    KINDS,
    KNOB_PARAMS,
    UPLINK_ANALYTIC,
    AudioKnobParams,
    CameraKnobParams,
    GasKnobParams,
    InvalidKnobParams,
    UplinkKnobParams,
    audio_analytic,
    camera_analytic,
    detector_analytic,
    gas_analytic,
    knob_params,
    parse_analytic,
    source_of,
)
from schemas.envelope import Model
from schemas.qos import ANALYTIC_NAME_PATTERN, QosKnob, QosLevel
from schemas.topic_spec import PUBLISH_OVERHEAD_BYTES, publish_bytes
from services.common.settings import StageSettings

SERVICES = Path(services.__file__).parent
SOURCE = st.from_regex(r"\A[A-Za-z0-9_.-]{1,40}\Z")
BUILDERS = {
    "camera": camera_analytic,
    "detector": detector_analytic,
    "audio": audio_analytic,
    "gas": gas_analytic,
}


@given(kind=st.sampled_from(sorted(BUILDERS)), source=SOURCE)
def test_every_name_parses_back_to_its_kind_and_source(kind: str, source: str) -> None:
    name = BUILDERS[kind](source)
    assert parse_analytic(name) == (kind, source)
    assert source_of(kind, name) == source  # type: ignore[arg-type]
    others = [other for other in KINDS if other != kind]
    assert all(source_of(other, name) is None for other in others)


def test_every_kind_has_its_knob_model() -> None:
    assert set(KNOB_PARAMS) == set(KINDS)


def test_uplink_and_unknown_names() -> None:
    assert parse_analytic(UPLINK_ANALYTIC) == ("uplink", "")
    for name in ("uplink.x", "camera.", "camera", "speaker.x", "", "gas"):
        assert parse_analytic(name) is None, name


def _knob(analytic: str, params: dict[str, str | int | float | bool]) -> QosKnob:
    level = QosLevel(name="l", params=params, cost_kbps=1.0, utility=1.0)
    return QosKnob(source="bandwidth-allocator", analytic=analytic, level=level)


def test_knob_params_are_typed_and_bad_ones_name_the_field() -> None:
    camera = knob_params(CameraKnobParams, _knob("camera.a", {"fps": 5, "max_width": 320}))
    assert camera.fps == 5.0 and camera.max_width == 320 and camera.jpeg_quality is None
    assert knob_params(AudioKnobParams, _knob("audio.m", {"patch_stride": 4})).patch_stride == 4
    assert knob_params(UplinkKnobParams, _knob("uplink", {})).kbps is None
    bad = [
        (GasKnobParams, {"sample_period_s": "1"}, "level.params.sample_period_s"),
        (GasKnobParams, {"sample_period_s": 0}, "level.params.sample_period_s"),
        (GasKnobParams, {}, "level.params.sample_period_s: Field required"),
        (AudioKnobParams, {"patch_stride": True}, "level.params.patch_stride"),
        (AudioKnobParams, {"patch_stride": 2.5}, "level.params.patch_stride"),
        (CameraKnobParams, {"fps": 5, "resolution": "hd"}, "level.params.resolution"),
        (CameraKnobParams, {"jpeg_quality": 101}, "level.params.jpeg_quality"),
        (UplinkKnobParams, {"kbps": 1e300}, "level.params.kbps"),
    ]
    for model, params, named in bad:
        with pytest.raises(InvalidKnobParams, match=r"^qos/x\.y: ") as caught:
            knob_params(model, _knob("x.y", params))  # type: ignore[arg-type]
        assert named in str(caught.value), (params, str(caught.value))
    with pytest.raises(ValidationError, match="finite"):  # refused before any knob model
        _knob("uplink", {"kbps": float("inf")})


def test_one_publish_price_with_user_properties() -> None:
    assert publish_bytes("a/b", b"xyz") == 3 + 3 + PUBLISH_OVERHEAD_BYTES
    # Identifier (1) and two length-prefixed UTF-8 strings (2 + len each).
    assert publish_bytes("a/b", b"xyz", {"seq": "12"}) == 3 + 3 + 10 + PUBLISH_OVERHEAD_BYTES


def _settings_modules() -> list[ModuleType]:
    modules = []
    for info in pkgutil.iter_modules([str(SERVICES)]):
        if (SERVICES / info.name / "settings.py").exists():
            modules.append(importlib.import_module(f"services.{info.name}.settings"))
    return modules


def _own_fields(cls: type) -> set[str]:
    return set(inspect.get_annotations(cls))


def _declared_twice(settings: type[StageSettings], config: type[Model]) -> set[str]:
    """Fields of `config` that `settings` (or a settings class it extends)
    declares itself rather than inheriting them from a config model."""
    shared = set(config.model_fields)
    owners = [k for k in settings.__mro__ if issubclass(k, StageSettings)]
    return {name for owner in owners for name in _own_fields(owner) & shared}


def _stage_settings() -> list[tuple[type[StageSettings], list[type[Model]]]]:
    found: list[tuple[type[StageSettings], list[type[Model]]]] = []
    for module in _settings_modules():
        classes = [c for _, c in inspect.getmembers(module, inspect.isclass)]
        here = [c for c in classes if c.__module__ == module.__name__]
        settings = [c for c in here if issubclass(c, StageSettings)]
        models = [c for c in classes if issubclass(c, Model) and not issubclass(c, StageSettings)]
        found.extend((s, models) for s in settings)
    return found


def test_no_settings_field_repeats_a_config_field() -> None:
    found = _stage_settings()
    assert len(found) >= 10  # every stage's settings were looked at
    for settings, models in found:
        for model in models:
            twice = _declared_twice(settings, model)
            assert not twice, f"{settings.__name__} repeats {sorted(twice)} of {model.__name__}"


def test_start_up_settings_extend_their_runtime_config() -> None:
    """The config a stage starts with is built from fields it inherited, with
    the very definitions (bounds, defaults) of the runtime config."""
    checked = []
    for settings, _ in _stage_settings():
        method = getattr(settings, "startup_config", None)
        method = method or getattr(settings, "initial_config", None)
        if not callable(method):
            continue
        config = typing.get_type_hints(method)["return"]
        assert issubclass(settings, config), f"{settings.__name__} lacks {config.__name__}"
        # The config model's extra="forbid" must not win over the settings' own.
        assert settings.model_config["extra"] == "ignore", settings.__name__
        assert settings.model_config["env_prefix"] == "EDGEGW_", settings.__name__
        for name, field in config.model_fields.items():
            assert repr(settings.model_fields[name]) == repr(field), (settings.__name__, name)
        checked.append(settings.__name__)
    assert len(checked) == 8, checked  # object-tracker joined


def _literal_prefixes(tree: ast.AST) -> list[int]:
    """Lines that spell an analytic name by hand."""
    prefixes = tuple(f"{kind}." for kind in BUILDERS)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith(prefixes):
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value in (*prefixes, UPLINK_ANALYTIC):
            lines.append(node.lineno)
    return lines


def test_stages_build_no_analytic_name_by_hand() -> None:
    spelled = {}
    for path in sorted(SERVICES.rglob("*.py")):
        if path.name.startswith("profile_") or "cli" in path.parts:
            continue  # offline profilers print names; the CLI only reads them
        lines = _literal_prefixes(ast.parse(path.read_text()))
        if lines:
            spelled[str(path.relative_to(SERVICES))] = lines
    assert spelled == {}


def test_analytic_names_fit_the_topic_pattern() -> None:
    import re

    for build in BUILDERS.values():
        assert re.match(ANALYTIC_NAME_PATTERN, build("cam1"))
    assert re.match(ANALYTIC_NAME_PATTERN, UPLINK_ANALYTIC)


def test_env_names_of_knob_fields_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.bandwidth_allocator.settings import BandwidthAllocatorSettings
    from services.camera_capture.settings import CameraCaptureSettings
    from services.cloud_bridge.settings import CloudBridgeSettings
    from services.gas_average.settings import GasAverageSettings

    for name, value in {
        "EDGEGW_FPS": "4",
        "EDGEGW_MAX_WIDTH": "320",
        "EDGEGW_TIME_WINDOW_S": "30",
        "EDGEGW_PUBLISH_INTERVAL_S": "0",
        "EDGEGW_BUDGET_KBPS": "123",
        "EDGEGW_BUDGET_SOURCE": "measured",
    }.items():
        monkeypatch.setenv(name, value)
    camera = CameraCaptureSettings().startup_config()
    assert (camera.fps, camera.max_width, camera.jpeg_quality) == (4.0, 320, 80)
    gas = GasAverageSettings().startup_config()
    assert (gas.time_window_s, gas.publish_interval_s) == (30.0, 0.0)
    allocator = BandwidthAllocatorSettings().startup_config()
    assert (allocator.budget_kbps, allocator.budget_source) == (123.0, "measured")
    assert CloudBridgeSettings().startup_config().budget_kbps == 123.0
    monkeypatch.setenv("EDGEGW_FPS", "nan")
    with pytest.raises(ValueError, match="fps"):
        CameraCaptureSettings()
