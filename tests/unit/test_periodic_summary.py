"""Tally, the pure part of every counting summary: bounded keys, taken whole."""

from __future__ import annotations

from services.common.periodic_summary import OTHER, Tally


def test_a_tally_is_taken_whole_with_its_start_and_then_starts_again() -> None:
    tally = Tally(now=10.0, max_keys=2)
    assert tally.take(now=20.0) is None  # an idle period publishes nothing
    for key in ("cam.person", "cam.dog", "cam.cat", "cam.person"):
        tally.add("new_objects", key)
    taken = tally.take(now=30.0)
    assert taken == (20.0, {"new_objects": {OTHER: 1, "cam.dog": 1, "cam.person": 2}})
    assert tally.take(now=40.0) is None
