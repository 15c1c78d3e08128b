"""Zones: point-in-polygon on the bottom-centre of a box, in frame fractions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.object_detector.ssd import DetectionBox
from services.object_tracker.zones import Zone, point_in_polygon, zones_containing

SQUARE = ((0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6))
# An L shape: the notch (top right) is outside.
ELL = ((0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0))


def test_inside_outside_and_edges() -> None:
    assert point_in_polygon((0.4, 0.4), SQUARE)
    assert not point_in_polygon((0.7, 0.4), SQUARE)
    assert point_in_polygon((0.2, 0.4), SQUARE)  # on an edge counts as inside
    assert point_in_polygon((0.6, 0.6), SQUARE)  # a corner too
    assert not point_in_polygon((0.75, 0.25), ELL)
    assert point_in_polygon((0.75, 0.75), ELL) and point_in_polygon((0.25, 0.25), ELL)


@given(st.floats(0, 1), st.floats(0, 1))
def test_rectangle_matches_bounds(x: float, y: float) -> None:
    assert point_in_polygon((x, y), SQUARE) == (0.2 <= x <= 0.6 and 0.2 <= y <= 0.6)


def test_bottom_centre_decides_and_scales_with_frame_size() -> None:
    zone = Zone("lawn", ((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)))
    standing_on_lawn = DetectionBox(100, 100, 140, 260)  # head above, feet on the lawn
    assert zones_containing(standing_on_lawn, "person", [zone], 400, 400) == {"lawn"}
    # The same scene at half size: same answer, since coordinates are fractions.
    half = DetectionBox(50, 50, 70, 130)
    assert zones_containing(half, "person", [zone], 200, 200) == {"lawn"}
    above = DetectionBox(100, 0, 140, 150)
    assert zones_containing(above, "person", [zone], 400, 400) == frozenset()


def test_zone_labels_filter() -> None:
    drive = Zone("drive", SQUARE, labels=frozenset({"car"}))
    box = DetectionBox(30, 30, 50, 50)
    assert zones_containing(box, "car", [drive], 100, 100) == {"drive"}
    assert zones_containing(box, "person", [drive], 100, 100) == frozenset()


def test_invalid_zones_are_rejected_with_the_name() -> None:
    with pytest.raises(ValueError, match=r"'gate'.*3 points"):
        Zone("gate", ((0.1, 0.1), (0.2, 0.2)))
    with pytest.raises(ValueError, match=r"'gate'.*fractions"):
        Zone("gate", ((0.1, 0.1), (640.0, 0.2), (0.3, 0.9)))
