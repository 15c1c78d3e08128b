"""The QoS levels a camera offers: fps x width x JPEG quality.

Cost is measured: the frames given are encoded at each size and quality and
the mean JPEG size times the fps is the level's kbit/s (every frame
published, i.e. the motion gate off: the worst case the allocator must budget).

Utility is NOT measured — that would need the detector's recall at each level
against a full-rate run, which the camera cannot know. It comes from a
documented monotone model instead, so the allocator at least prefers more of
everything at equal cost:

    utility = (fps / fps_max) ** 0.5 * (width / width_max) ** 0.5
              * (0.7 + 0.3 * quality / quality_max)

Square roots because tracking degrades slowly with fps (an object stays in
view for many frames) and an SSD at 300x300 input gains less from pixels
beyond its input size; quality weighs least because the detector tolerates
JPEG artefacts well.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.qos import MAX_LEVELS, QosLevel
from services.camera_capture.encode import Frame, encode_jpeg, fit_size, resize_to_fit


def level_utility(
    fps: float, width: int, quality: int, fps_max: float, width_max: int, quality_max: int
) -> float:
    value: float = (
        (fps / fps_max) ** 0.5 * (width / width_max) ** 0.5 * (0.7 + 0.3 * quality / quality_max)
    )
    return round(min(1.0, max(0.0, value)), 4)


def measure_levels(
    frames: Sequence[Frame],
    fps_choices: Sequence[float],
    width_choices: Sequence[int],
    quality_choices: Sequence[int],
) -> list[QosLevel]:
    """Every combination, cost from the frames' real JPEG sizes. Widths above
    the source's are folded into the source width (frames are never upscaled)."""
    if not frames:
        raise ValueError("at least one frame is needed to measure JPEG sizes")
    height, width = frames[0].shape[:2]
    widths = sorted({min(w, width) for w in width_choices})
    fps_list = sorted(set(fps_choices))
    qualities = sorted(set(quality_choices))
    if len(widths) * len(fps_list) * len(qualities) > MAX_LEVELS:
        raise ValueError(f"more than {MAX_LEVELS} levels: use fewer fps, widths or qualities")
    levels: list[QosLevel] = []
    for level_width in widths:
        # The height that keeps the aspect ratio, so fit_size lands on this width.
        level_height = max(16, round(level_width * height / width))
        out_width, _ = fit_size(width, height, level_width, level_height)
        for quality in qualities:
            sizes = [
                len(encode_jpeg(resize_to_fit(frame, level_width, level_height), quality))
                for frame in frames
            ]
            mean_bytes = sum(sizes) / len(sizes)
            for fps in fps_list:
                levels.append(
                    QosLevel(
                        name=f"{fps:g}fps-{out_width}w-q{quality}",
                        params={
                            "fps": fps,
                            "max_width": level_width,
                            "max_height": level_height,
                            "jpeg_quality": quality,
                        },
                        cost_kbps=round(mean_bytes * 8 * fps / 1000, 1),
                        utility=level_utility(
                            fps, out_width, quality, fps_list[-1], widths[-1], qualities[-1]
                        ),
                    )
                )
    return levels
