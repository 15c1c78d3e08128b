"""`edgegw profile video`: the utility of each camera and detector level, measured.

A bounded segment of the bundled vtest.avi (pedestrians, 768x576, 10 fps)
goes through the real pipeline pieces in-process, one interpreter thread:
camera-capture's resize and JPEG encode, the JPEG decode, the SSD detector,
the tracker and the event builder of object-detector with their default
settings. The reference is the full-rate run on the raw frames (every frame,
full size, no JPEG).

Camera level (fps x max width x JPEG quality, the grid camera-capture offers):
frames are shrunk and encoded at that size and quality (detections cached
per size and quality, so the fps levels reuse them), every
`source_fps / fps`-th frame is kept, and the kept frames are tracked and
turned into person events as the detector would. Against the reference:

- event_recall: share of the reference person events matched by a level
  event (one to one, best first) whose track boxes overlap the reference
  track's with mean IoU >= EVENT_IOU over the frames both saw;
- mean_iou: on the kept frames, each reference person detection's IoU with
  its greedily matched level detection (IoU >= DETECTION_IOU), a miss
  counting 0 (so it is recall and localisation in one number);
- utility = event_recall x mean_iou; cost = mean JPEG bits x fps.

Detector level (result rate x snapshots), on the reference run: events are
always published, so they carry a fixed EVENTS_SHARE of the utility.
results_quality is the mean IoU (as above) of the latest published
detections (at most `result_rate` messages/s) against every frame's;
snapshot_share is the share of `new` events whose snapshot crop the
detector, run again on the crop, finds a person in. utility = EVENTS_SHARE
+ RESULTS_SHARE x results_quality + SNAPSHOT_SHARE x snapshot_share (0 when
snapshots are off). Cost = real detections JSON bytes x rate + event bytes x
event rate + (snapshots) real crop bytes x new-event rate.

Regenerate the table camera-capture and object-detector publish (under two
minutes on one core; deterministic for a given model and video):

    python -m profiling.video    (or: edgegw profile video)

which writes services/media/video_levels.json (see --help for the segment).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from profiling.cli import profile_main, write_table
from profiling.video_detector import profile_detector
from profiling.video_pipeline import (
    FrameDetections,
    detect_all,
    event_recall,
    mean_iou,
    read_frames,
    run_pipeline,
)
from services.camera_capture.settings import CameraCaptureSettings
from services.media.jpeg_decode import RgbFrame, decode_jpeg
from services.media.jpeg_encode import encode_jpeg, resize_to_fit
from services.media.jpeg_frame import Frame, fit_size
from services.media.video_profile import (
    VIDEO_PROFILE_PATH,
    CameraProfiledLevel,
    VideoProfile,
)
from services.object_detector.settings import DetectorConfig, ObjectDetectorSettings
from services.object_detector.ssd import SSDDetector, load_detector

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO / ".cache" / "media" / "vtest.avi"
DEFAULT_FRAMES = 300
REGENERATE = "python -m profiling.video --out services/media/video_levels.json"


@dataclass(frozen=True)
class Encoded:
    detections: list[FrameDetections]
    mean_bytes: float
    size: tuple[int, int]


def as_captured(frame: RgbFrame) -> Frame:
    """An RGB frame in camera-capture's order, OpenCV's BGR, for its encoder."""
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), dtype=np.uint8)


def profile_camera(
    detector: SSDDetector,
    frames: Sequence[RgbFrame],
    reference: list[FrameDetections],
    source_fps: float,
    grid: CameraCaptureSettings,
    min_score: float,
) -> list[CameraProfiledLevel]:
    height, width = frames[0].shape[:2]
    reference_run = run_pipeline(reference, range(len(frames)), source_fps, (width, height))
    cache: dict[tuple[int, int], Encoded] = {}
    rows = []
    for max_width in sorted({min(w, width) for w in grid.level_widths}):
        max_height = max(16, round(max_width * height / width))
        out_size = fit_size(width, height, max_width, max_height)
        for quality in sorted(set(grid.level_qualities)):
            sizes, decoded = [], []
            for frame in frames:
                small = as_captured(resize_to_fit(frame, max_width, max_height))
                jpeg = encode_jpeg(small, quality)
                sizes.append(len(jpeg))
                decoded.append(decode_jpeg(jpeg))
            cache[(max_width, quality)] = Encoded(
                detect_all(detector, decoded, min_score), statistics.fmean(sizes), out_size
            )
    for (max_width, quality), encoded in cache.items():
        for fps in sorted(set(grid.level_fps)):
            step = max(1, round(source_fps / fps))
            kept = range(0, len(frames), step)
            run = run_pipeline(encoded.detections, kept, source_fps, encoded.size)
            recall = event_recall(reference_run, run)
            iou = mean_iou(reference, encoded.detections, kept)
            # The knob value the camera is sent: a folded width keeps its grid name.
            knob_width = max(w for w in grid.level_widths if min(w, width) == max_width)
            rows.append(
                CameraProfiledLevel(
                    fps=fps,
                    max_width=knob_width,
                    max_height=max(16, round(knob_width * height / width)),
                    width=encoded.size[0],
                    jpeg_quality=quality,
                    utility=round(recall * iou, 4),
                    event_recall=round(recall, 4),
                    mean_iou=round(iou, 4),
                    mean_jpeg_bytes=round(encoded.mean_bytes, 1),
                    cost_kbps=round(encoded.mean_bytes * 8 * fps / 1000, 1),
                )
            )
    return rows


def build_profile(video: Path, start: int, count: int, threads: int) -> VideoProfile:
    started = time.perf_counter()
    defaults = ObjectDetectorSettings(threads=threads)
    detector = load_detector(defaults.model_path, defaults.labels_path, threads)
    capture = cv2.VideoCapture(str(video))
    source_fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    capture.release()
    frames = read_frames(video, start, count)
    min_score = DetectorConfig().detection_min_score
    reference = detect_all(detector, frames, min_score)
    camera_grid = CameraCaptureSettings()
    camera = profile_camera(detector, frames, reference, source_fps, camera_grid, min_score)
    detector_rows, costs = profile_detector(detector, frames, reference, source_fps)
    return VideoProfile(
        generated_by=REGENERATE,
        video=f"{video.name} frames {start}..{start + len(frames) - 1}",
        frames=len(frames),
        source_fps=source_fps,
        reference="every frame, full size, raw (no JPEG), SSD MobileNet v2 + tracker + events",
        camera=camera,
        detector=detector_rows,
        detector_costs=costs,
        profile_seconds=round(time.perf_counter() - started, 1),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=VIDEO_PROFILE_PATH, help="JSON table to write")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--start", type=int, default=0, help="first frame of the segment")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="segment length")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")


def profile_command(args: argparse.Namespace) -> int:
    """What `edgegw profile video` runs: write the table, print a summary."""
    profile = build_profile(args.video, args.start, args.frames, args.threads)
    cameras = (
        f"camera {row.fps:g}fps {row.width}w q{row.jpeg_quality}: utility {row.utility:.3f} "
        f"(recall {row.event_recall:.2f} x iou {row.mean_iou:.2f}) {row.cost_kbps:g} kbit/s"
        for row in profile.camera
    )
    detectors = (
        f"detector {d.result_rate:g}/s snapshots={d.snapshots}: utility {d.utility:.3f} "
        f"{d.cost_kbps:g} kbit/s"
        for d in profile.detector
    )
    summary = [*cameras, *detectors]
    return write_table(args.out, profile, summary, f" in {profile.profile_seconds} s")


def main(argv: list[str] | None = None) -> None:
    profile_main(__doc__, add_arguments, profile_command, argv)


if __name__ == "__main__":
    main()
