"""The tally behind summary/<analytic>."""

from __future__ import annotations

from services.common.periodic_summary import OTHER, Tally


def test_a_tally_counts_per_group_and_starts_afresh_each_period() -> None:
    tally = Tally(now=100.0, max_keys=2)
    assert tally.take(now=110.0) is None  # an idle period publishes nothing
    tally.add("new_objects", "lobby.person")
    tally.add("new_objects", "lobby.person")
    tally.add("new_objects", "lobby.dog")
    tally.add("new_objects", "lobby.cat")  # beyond max_keys
    start, values = tally.take(now=120.0) or (0.0, {})
    assert start == 110.0
    assert values == {"new_objects": {OTHER: 1, "lobby.dog": 1, "lobby.person": 2}}
    assert tally.take(now=130.0) is None
