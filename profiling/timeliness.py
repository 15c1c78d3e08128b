"""The score the event profilers (audio, gas) share: recall of the reference
episodes, discounted by how late they were found."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import NamedTuple


class Timeliness(NamedTuple):
    recall: float
    mean_delay_s: float
    utility: float  # recall * 0.5 ** (mean delay / half-life)


def timeliness(
    detected: int, reference: int, delays: Sequence[float], half_life_s: float
) -> Timeliness:
    """Recall (1.0 with nothing to find), mean delay (0 with none) and their utility."""
    recall = detected / reference if reference else 1.0
    delay = statistics.fmean(delays) if delays else 0.0
    return Timeliness(recall, delay, recall * 0.5 ** (delay / half_life_s))
