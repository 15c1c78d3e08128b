"""The QoS levels a camera offers: fps x width x JPEG quality.

Utility is measured, not modelled: it comes from the video profile
(`video_levels.json`, written by `python -m profiling.video`;
see there for the measurement — person-event recall x mean IoU of the
detections against the full-rate, full-size run — and how to regenerate it).
A combination the profile did not measure is not offered.

Cost is measured live: the camera's own frames are encoded at each size and
quality and the mean JPEG size times the fps is the level's kbit/s (every
frame published, i.e. the motion gate off: the worst case the allocator must
budget). A camera whose scene compresses differently from the profiled
video is priced by its own frames.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from schemas.analytics import CameraKnobParams
from schemas.qos import MAX_LEVELS, QosLevel
from services.media.jpeg_encode import encode_jpeg, resize_to_fit
from services.media.jpeg_frame import Frame, fit_size
from services.media.video_profile import VideoProfile

log = logging.getLogger(__name__)


def measure_levels(
    frames: Sequence[Frame],
    fps_choices: Sequence[float],
    width_choices: Sequence[int],
    quality_choices: Sequence[int],
    profile: VideoProfile,
) -> list[QosLevel]:
    """Every profiled combination, cost from the frames' real JPEG sizes.
    Widths above the source's are folded into the source width (frames are
    never upscaled): of several knob widths giving one frame size, the
    largest is kept, which is how the profile names them too."""
    if not frames:
        raise ValueError("at least one frame is needed to measure JPEG sizes")
    height, width = frames[0].shape[:2]
    by_size: dict[int, int] = {}
    for knob_width in sorted(set(width_choices)):
        by_size[min(knob_width, width)] = knob_width
    fps_list = sorted(set(fps_choices))
    qualities = sorted(set(quality_choices))
    if len(by_size) * len(fps_list) * len(qualities) > MAX_LEVELS:
        raise ValueError(f"more than {MAX_LEVELS} levels: use fewer fps, widths or qualities")
    levels: list[QosLevel] = []
    for level_width, knob_width in sorted(by_size.items()):
        # The height that keeps the aspect ratio, so fit_size lands on this width.
        level_height = max(16, round(level_width * height / width))
        out_width, _ = fit_size(width, height, level_width, level_height)
        for quality in qualities:
            profiled = {fps: profile.camera_utility(fps, knob_width, quality) for fps in fps_list}
            if all(utility is None for utility in profiled.values()):
                log.warning(
                    "level not profiled, not offered",
                    extra={"max_width": knob_width, "jpeg_quality": quality},
                )
                continue
            sizes = [
                len(encode_jpeg(resize_to_fit(frame, level_width, level_height), quality))
                for frame in frames
            ]
            mean_bytes = sum(sizes) / len(sizes)
            for fps, utility in profiled.items():
                if utility is None:
                    continue
                levels.append(
                    QosLevel(
                        name=f"{fps:g}fps-{out_width}w-q{quality}",
                        params=CameraKnobParams(
                            fps=fps,
                            max_width=level_width,
                            max_height=level_height,
                            jpeg_quality=quality,
                        ).model_dump(exclude_none=True),
                        cost_kbps=round(mean_bytes * 8 * fps / 1000, 1),
                        utility=utility,
                    )
                )
    if not levels:
        raise ValueError("no level of the configured grid is in the video profile")
    return levels
