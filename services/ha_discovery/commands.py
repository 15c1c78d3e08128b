"""Home Assistant's commands as the retained config they stand for, and the
switch states a stage's applied config implies. No I/O.

A command changes one field of the operator's override (`config/<stage>`,
retained): the override in force is kept whole and only that field changes,
so the operator's other settings stay. The stage answers on its config state
as it does for any config; the switch states are read from that answer.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Final

from pydantic import JsonValue

from schemas.topics import BANDWIDTH_ALLOCATOR
from services.ha_discovery.devices import AUTO_LEVEL, SWITCHES

ON: Final = "ON"
OFF: Final = "OFF"
Override = dict[str, Any]


class BadCommand(ValueError):
    """A command payload that means nothing for its entity."""


def switch_override(
    override: Override, camera: str, feature: str, word: str
) -> tuple[str, Override]:
    """(stage, its new override) for switch `feature` of `camera` set to ON/OFF."""
    if feature not in SWITCHES:
        raise BadCommand(f"no switch {feature!r}; switches: {', '.join(SWITCHES)}")
    if word not in (ON, OFF):
        raise BadCommand(f"a switch takes {ON} or {OFF}, got {word[:20]!r}")
    stage, field = SWITCHES[feature]
    updated = copy.deepcopy(override)
    per_camera = updated.get(field)
    if not isinstance(per_camera, dict):
        per_camera = {}
    per_camera[camera] = word == ON
    updated[field] = per_camera
    return stage, updated


def budget_override(override: Override, word: str) -> tuple[str, Override]:
    try:
        kbps = float(word)
    except ValueError:
        raise BadCommand(f"a budget is a number of kbit/s, got {word[:20]!r}") from None
    if not math.isfinite(kbps) or kbps < 0:
        raise BadCommand(f"a budget is a finite number >= 0, got {word[:20]!r}")
    updated = copy.deepcopy(override)
    updated["budget_kbps"] = int(kbps) if kbps.is_integer() else kbps
    return BANDWIDTH_ALLOCATOR, updated


def level_override(override: Override, analytic: str, level: str) -> tuple[str, Override]:
    """Pin `analytic` to `level`; `auto` unpins it."""
    if not level or len(level) > 64:
        raise BadCommand(f"not a level name: {level[:20]!r}")
    updated = copy.deepcopy(override)
    pins = updated.get("pinned_levels")
    pins = dict(pins) if isinstance(pins, dict) else {}
    if level == AUTO_LEVEL:
        pins.pop(analytic, None)
    else:
        pins[analytic] = level
    updated["pinned_levels"] = pins
    return BANDWIDTH_ALLOCATOR, updated


def switch_state(applied: dict[str, JsonValue], camera: str, feature: str) -> str | None:
    """ON/OFF for `feature` of `camera` under the stage's applied config; None
    if that config has no such switch (an older stage)."""
    field = SWITCHES[feature][1]
    per_camera = applied.get(field)
    if not isinstance(per_camera, dict):
        return None
    fallback: JsonValue = True
    if feature == "snapshots":
        fallback = applied.get("snapshots", True)
    elif feature == "motion":
        fallback = applied.get("motion_enabled", False)
    value = per_camera.get(camera, fallback)
    return ON if value is True else OFF
