"""When to start preparing the next frame while the model runs.

The detector is a two-stage pipeline: decode and resize of the next frame
(one thread) beside inference of the current one (another), with a hand-off
of one frame between them. Started as soon as the model takes a frame, the
next frame would then wait for the model nearly a whole inference, and under
overload every frame would be that much older when detected. So the next
frame is taken from the (latest-wins) mailbox `inference - prepare` into the
current inference: ready just as the model wants it, and the newest there is.

Durations are smoothed (EMA); pure, time passed in.
"""

from __future__ import annotations

SMOOTHING = 0.2
# Start a little early: a prepared frame waiting 1-2 ms costs less than an idle model.
MARGIN = 0.85


class PreparePace:
    def __init__(self) -> None:
        self._prepare_s: float | None = None
        self._inference_s: float | None = None
        self._inference_started: float | None = None  # while the model runs

    def prepared(self, seconds: float) -> None:
        self._prepare_s = _smooth(self._prepare_s, seconds)

    def inference_started(self, now: float) -> None:
        self._inference_started = now

    def inferred(self, seconds: float) -> None:
        self._inference_s = _smooth(self._inference_s, seconds)
        self._inference_started = None

    def wait_before_prepare_s(self, now: float) -> float:
        """How long to wait before taking the next frame (0: take it now)."""
        if self._inference_started is None or self._inference_s is None:
            return 0.0  # the model is idle, or not yet measured: no time to lose
        prepare = self._prepare_s or 0.0
        ready_at = self._inference_started + MARGIN * (self._inference_s - prepare)
        return max(0.0, min(ready_at - now, self._inference_s))


def _smooth(previous: float | None, value: float) -> float:
    return value if previous is None else previous + SMOOTHING * (value - previous)
