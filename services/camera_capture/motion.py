"""A motion gate: publish a frame only when something moves, as Frigate does.

The frame is shrunk to a small grey image and blurred (sensor noise and
compression artefacts must not count as motion), compared with a running
average of the previous frames, thresholded, and the areas of the changed
regions summed: the motion score is the fraction of the image that moved,
0..1. A frame is published when the score reaches the minimum for the
configured sensitivity, and in any case at least every `keyframe_interval_s`
so that a static scene is still seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]

_DILATION_KERNEL = np.ones((3, 3), dtype=np.uint8)


@dataclass(frozen=True)
class MotionSettings:
    enabled: bool = True
    # 0 = only large, strong changes count; 1 = the faintest change counts.
    sensitivity: float = 0.5
    keyframe_interval_s: float = 10.0
    # Height of the image the comparison runs on; Frigate uses 100 px.
    frame_height: int = 100
    # Weight of the newest frame in the background average: at 10 fps, 0.1
    # forgets a scene change in about a second.
    background_alpha: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.sensitivity <= 1.0:
            raise ValueError(f"sensitivity must be in [0, 1], got {self.sensitivity}")
        if self.keyframe_interval_s <= 0:
            raise ValueError(f"keyframe_interval_s must be > 0, got {self.keyframe_interval_s}")
        if self.frame_height < 16:
            raise ValueError(f"frame_height must be >= 16, got {self.frame_height}")
        if not 0.0 < self.background_alpha <= 1.0:
            raise ValueError(f"background_alpha must be in (0, 1], got {self.background_alpha}")

    @property
    def pixel_threshold(self) -> int:
        """Grey-level change that marks a pixel as changed: 50 down to 10
        (30 at the default sensitivity, Frigate's default)."""
        return round(50 - 40 * self.sensitivity)

    @property
    def min_score(self) -> float:
        """Fraction of the image that must move: 3 % at sensitivity 0, 0.1 % at
        0.5, 0.003 % at 1 (a log scale, because useful values span decades)."""
        return math.pow(10.0, -1.5 - 3.0 * self.sensitivity)


@dataclass(frozen=True)
class MotionDecision:
    score: float  # fraction of the image that moved, 0..1
    motion: bool  # score reached the sensitivity's minimum
    keyframe: bool  # published because the keyframe interval ran out
    publish: bool


class MotionGate:
    """Motion state of one camera. Not thread-safe: one caller per camera."""

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self._settings = settings or MotionSettings()
        self._background: npt.NDArray[np.float32] | None = None
        self._last_published: float | None = None

    @property
    def settings(self) -> MotionSettings:
        return self._settings

    def reconfigure(self, settings: MotionSettings) -> None:
        """Apply new knobs on the fly (build them with dataclasses.replace); the
        background model is kept unless the comparison image size changes."""
        if settings.frame_height != self._settings.frame_height:
            self._background = None
        self._settings = settings

    def motion_score(self, frame: Frame) -> float:
        """Compare `frame` with the background, then fold it into the background."""
        small = self._small_grey(frame)
        if self._background is None or self._background.shape != small.shape:
            self._background = small.astype(np.float32)
            return 0.0
        delta = cv2.absdiff(small, cv2.convertScaleAbs(self._background))
        _, changed = cv2.threshold(delta, self._settings.pixel_threshold, 255, cv2.THRESH_BINARY)
        # Dilation joins the fragments of one moving object into one region.
        changed = cv2.dilate(changed, _DILATION_KERNEL, iterations=2)
        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        moved_area = sum(cv2.contourArea(c) for c in contours)
        cv2.accumulateWeighted(small, self._background, self._settings.background_alpha)
        return min(1.0, moved_area / float(small.shape[0] * small.shape[1]))

    def observe(self, frame: Frame, ts: float) -> MotionDecision:
        """Decide whether the frame captured at `ts` (seconds) is published."""
        settings = self._settings
        if not settings.enabled:
            self._last_published = ts
            return MotionDecision(score=0.0, motion=False, keyframe=False, publish=True)
        score = self.motion_score(frame)
        motion = score >= settings.min_score
        keyframe = not motion and (
            self._last_published is None
            or ts - self._last_published >= settings.keyframe_interval_s
        )
        publish = motion or keyframe
        if publish:
            self._last_published = ts
        return MotionDecision(score=score, motion=motion, keyframe=keyframe, publish=publish)

    def _small_grey(self, frame: Frame) -> Frame:
        if frame.ndim == 3:
            grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        elif frame.ndim == 2:
            grey = frame
        else:
            raise ValueError(f"expected a BGR or grey frame, got shape {frame.shape}")
        height, width = grey.shape
        target_height = min(self._settings.frame_height, height)
        target_width = max(1, round(width * target_height / height))
        small = cv2.resize(grey, (target_width, target_height), interpolation=cv2.INTER_AREA)
        return np.asarray(cv2.GaussianBlur(small, (5, 5), 0), dtype=np.uint8)
