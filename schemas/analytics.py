"""Every analytic name (`camera.<cam>`, `detector.<cam>`, `audio.<mic>`,
`gas.<sensor>`, the reserved `uplink`) and the typed knob parameters each kind
takes: a `qos/<analytic>` knob's `level.params` travels as a plain dict and is
validated on receipt through its kind's model, which names the bad field.

The bounds of a knob value are defined once, here, as annotated types: a
stage's runtime config field and its knob parameter both use them.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, TypeVar, get_args

from pydantic import ConfigDict, Field, ValidationError

# Kbps: 0 is a valid budget to announce (nothing may upload); the bridge refuses to run at it.
from schemas.envelope import Kbps, Model
from schemas.qos import QosKnob

AnalyticKind = Literal["camera", "detector", "audio", "gas", "uplink"]
KINDS: Final[tuple[AnalyticKind, ...]] = get_args(AnalyticKind)
# The knob on `qos/uplink` carries the upload budget in force (`params.kbps`):
# the cloud bridge rate-limits its uploads to it. No analytic may take the name.
UPLINK_ANALYTIC: Final = "uplink"

# -- names --------------------------------------------------------------------


def camera_analytic(camera: str) -> str:
    """What a camera's frames cost: camera-capture's fps, size and quality."""
    return f"camera.{camera}"


def detector_analytic(camera: str) -> str:
    """What the detections, events and snapshots of one camera cost."""
    return f"detector.{camera}"


def audio_analytic(mic: str) -> str:
    return f"audio.{mic}"


def gas_analytic(sensor: str) -> str:
    return f"gas.{sensor}"


def parse_analytic(name: str) -> tuple[AnalyticKind, str] | None:
    """`camera.yard` -> ("camera", "yard"); `uplink` -> ("uplink", ""); None
    for a name of no known kind."""
    if name == UPLINK_ANALYTIC:
        return "uplink", ""
    kind, dot, source = name.partition(".")
    for known in KINDS:
        if kind == known and dot and source and known != "uplink":
            return known, source
    return None


def source_of(kind: AnalyticKind, name: str) -> str | None:
    """The camera, mic or sensor of `name` if it is an analytic of `kind`."""
    parsed = parse_analytic(name)
    return parsed[1] if parsed is not None and parsed[0] == kind else None


# -- knob values: bounds defined once ----------------------------------------

Fps = Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)]
FrameWidth = Annotated[int, Field(ge=16, le=7680)]
FrameHeight = Annotated[int, Field(ge=16, le=4320)]
JpegQuality = Annotated[int, Field(ge=1, le=100)]
MotionSensitivity = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
KeyframeInterval = Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)]
# Detections messages per second per camera; 0 in a config: one per frame.
ResultRate = Annotated[float, Field(ge=0, le=60, allow_inf_nan=False)]
PatchStride = Annotated[int, Field(ge=1, le=1024)]
SamplePeriod = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]

# -- knob parameters per kind ---------------------------------------------------


class KnobParams(Model):
    """Strict: a knob value is a JSON number or boolean, never a string
    that looks like one, and never a boolean standing for a number."""

    model_config = ConfigDict(strict=True)


class CameraKnobParams(KnobParams):
    """`qos/camera.<cam>`: each value given overrides camera-capture's config."""

    fps: Fps | None = None
    max_width: FrameWidth | None = None
    max_height: FrameHeight | None = None
    jpeg_quality: JpegQuality | None = None
    motion_enabled: bool | None = None
    motion_sensitivity: MotionSensitivity | None = None
    keyframe_interval_s: KeyframeInterval | None = None


class DetectorKnobParams(KnobParams):
    """`qos/detector.<cam>`: each value given overrides object-detector's
    config for that camera."""

    result_rate: Annotated[ResultRate, Field(gt=0)] | None = None
    snapshots: bool | None = None


class AudioKnobParams(KnobParams):
    """`qos/audio.<mic>`: YAMNet runs on every `patch_stride`-th patch."""

    patch_stride: PatchStride


class GasKnobParams(KnobParams):
    """`qos/gas.<sensor>`: the sensor is sampled (or its trace forwarded) this often."""

    sample_period_s: SamplePeriod


class UplinkKnobParams(KnobParams):
    """`qos/uplink`: the upload budget in force; absent, the knob's `budget_kbps`."""

    kbps: Kbps | None = None


KNOB_PARAMS: Final[dict[AnalyticKind, type[KnobParams]]] = {
    "camera": CameraKnobParams,
    "detector": DetectorKnobParams,
    "audio": AudioKnobParams,
    "gas": GasKnobParams,
    "uplink": UplinkKnobParams,
}

ParamsT = TypeVar("ParamsT", bound=KnobParams)


class InvalidKnobParams(ValueError):
    """A knob's `level.params` do not fit its kind's model; the message names
    every bad field as `level.params.<field>`."""


def knob_params(model: type[ParamsT], knob: QosKnob) -> ParamsT:
    """The knob's params validated through `model`, or InvalidKnobParams."""
    try:
        return model.model_validate(knob.level.params)
    except ValidationError as error:
        raise InvalidKnobParams(describe_params_error(knob.analytic, error)) from None


def describe_params_error(analytic: str, error: ValidationError) -> str:
    parts = []
    for issue in error.errors():
        field = ".".join(["level", "params", *(str(part) for part in issue["loc"])])
        parts.append(f"{field}: {issue['msg']}")
    return f"qos/{analytic}: " + "; ".join(parts)
