"""Named polygon zones on a camera's image, and which of them an object is in.

Coordinates are fractions of the frame (0..1), not pixels: the capture stage
may change the frame size at any time (a QoS knob), and a zone must keep
meaning the same patch of the scene. An object is in a zone when the
bottom-centre of its box (where it stands) is inside the polygon, as in
Frigate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.video import DetectionBox

Point = tuple[float, float]


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: tuple[Point, ...]  # fractions of width and height, in order round the edge
    # Only these labels count in this zone; empty means every label.
    labels: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a zone needs a name")
        if len(self.polygon) < 3:
            raise ValueError(f"zone {self.name!r}: a polygon needs at least 3 points")
        for x, y in self.polygon:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(
                    f"zone {self.name!r}: point ({x}, {y}) is outside the frame; "
                    "coordinates are fractions of width and height (0..1)"
                )

    def applies_to(self, label: str) -> bool:
        return not self.labels or label in self.labels


def point_in_polygon(point: Point, polygon: Sequence[Point]) -> bool:
    """Even-odd ray casting. A point on an edge counts as inside, so an object
    standing exactly on a zone's border is in it."""
    x, y = point
    inside = False
    count = len(polygon)
    for i in range(count):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % count]
        if _on_segment(point, (x1, y1), (x2, y2)):
            return True
        if (y1 > y) != (y2 > y):
            crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < crossing_x:
                inside = not inside
    return inside


def _on_segment(point: Point, start: Point, end: Point, tolerance: float = 1e-9) -> bool:
    (px, py), (x1, y1), (x2, y2) = point, start, end
    cross = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
    if abs(cross) > tolerance:
        return False
    return min(x1, x2) - tolerance <= px <= max(x1, x2) + tolerance and (
        min(y1, y2) - tolerance <= py <= max(y1, y2) + tolerance
    )


def zones_containing(
    box: DetectionBox, label: str, zones: Sequence[Zone], frame_width: int, frame_height: int
) -> frozenset[str]:
    """Names of the zones whose polygon holds the box's bottom-centre."""
    if frame_width <= 0 or frame_height <= 0:
        raise ValueError(f"frame size must be positive, got {frame_width}x{frame_height}")
    x, y = box.bottom_centre
    point = (x / frame_width, y / frame_height)
    return frozenset(
        zone.name
        for zone in zones
        if zone.applies_to(label) and point_in_polygon(point, zone.polygon)
    )
