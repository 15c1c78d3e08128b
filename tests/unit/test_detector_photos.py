"""The real SSD MobileNet v2 COCO model on real photos (Debian's darknet package).

Ground-truth boxes were written by hand: each photo was converted to PNG with
a 50 px grid drawn over it, looked at, and the extent of each object read off
the grid (x1, y1, x2, y2 in pixels of the original photo, about +-5 px).
They were not taken from the model's output.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from services.inference import ModelLoadError, load_model
from services.object_detector.ssd import Detection, DetectionBox, SSDDetector, load_labels

CACHE = Path(__file__).resolve().parents[2] / ".cache"
MODEL = CACHE / "models" / "mobilenet_ssd_v2_coco_quant_postprocess.tflite"
LABELS = CACHE / "models" / "coco_labels.txt"
MEDIA = CACHE / "media"


def asset(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"missing test asset {path}: run `make assets` (tools/fetch_video_assets.sh)")
    return path


def read_photo(name: str) -> npt.NDArray[np.uint8]:
    """The photo as RGB, the order the detector takes (decode_jpeg's)."""
    frame = cv2.imread(str(asset(MEDIA / name)))
    assert frame is not None, f"cannot decode {name}"
    return np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), dtype=np.uint8)


@pytest.fixture(scope="module")
def detector() -> SSDDetector:
    return SSDDetector(load_model(asset(MODEL), threads=1), load_labels(asset(LABELS)))


# photo -> [(acceptable labels, ground-truth box)]
GROUND_TRUTH: dict[str, list[tuple[frozenset[str], DetectionBox]]] = {
    "dog.jpg": [
        (frozenset({"dog"}), DetectionBox(132, 220, 310, 540)),
        (frozenset({"bicycle"}), DetectionBox(125, 135, 567, 420)),
        # A pickup: COCO has both, and annotators disagree on pickups.
        (frozenset({"car", "truck"}), DetectionBox(467, 75, 697, 170)),
    ],
    "person.jpg": [
        (frozenset({"person"}), DetectionBox(190, 100, 275, 375)),
        (frozenset({"horse"}), DetectionBox(405, 140, 600, 345)),
    ],
    "giraffe.jpg": [
        (frozenset({"giraffe"}), DetectionBox(168, 30, 447, 440)),
        (frozenset({"zebra"}), DetectionBox(248, 205, 425, 430)),
    ],
    "eagle.jpg": [(frozenset({"bird"}), DetectionBox(130, 87, 598, 447))],
    "horses.jpg": [
        (frozenset({"horse"}), DetectionBox(5, 197, 315, 408)),  # the white horse in front
        (frozenset({"horse"}), DetectionBox(230, 197, 418, 362)),  # the brown one behind it
    ],
}


def best_match(
    detections: list[Detection], labels: frozenset[str], truth: DetectionBox
) -> Detection:
    candidates = [d for d in detections if d.label in labels]
    assert candidates, f"no {sorted(labels)} detected; got {[d.label for d in detections]}"
    return max(candidates, key=lambda d: d.box.iou(truth))


@pytest.mark.parametrize("photo", sorted(GROUND_TRUTH))
def test_detector_finds_labelled_objects(detector: SSDDetector, photo: str) -> None:
    frame = read_photo(photo)
    detections = detector.detect(frame, min_score=0.5)
    for labels, truth in GROUND_TRUTH[photo]:
        found = best_match(detections, labels, truth)
        assert found.score > 0.5, f"{photo}: {found}"
        assert found.box.iou(truth) >= 0.5, f"{photo}: {found} vs ground truth {truth}"


def test_small_dog_in_person_photo_is_found_with_low_confidence(detector: SSDDetector) -> None:
    # The dog at the left of person.jpg is small and dark on dry grass: this
    # model scores it only ~0.27 (measured), below the 0.5 used elsewhere.
    # It must still be the right object in the right place.
    frame = read_photo("person.jpg")
    truth = DetectionBox(65, 263, 200, 345)
    found = best_match(detector.detect(frame, min_score=0.2), frozenset({"dog"}), truth)
    assert found.box.iou(truth) >= 0.5


def test_boxes_are_in_original_frame_pixels(detector: SSDDetector) -> None:
    frame = read_photo("dog.jpg")
    # The same photo at half size: boxes must scale with the frame.
    half = np.asarray(cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2)), np.uint8)
    full_dog = best_match(
        detector.detect(frame), frozenset({"dog"}), DetectionBox(132, 220, 310, 540)
    )
    half_dog = best_match(
        detector.detect(half), frozenset({"dog"}), DetectionBox(66, 110, 155, 270)
    )
    doubled = DetectionBox(*(2 * v for v in half_dog.box.as_tuple()))
    assert doubled.iou(full_dog.box) >= 0.8


def test_no_detection_on_a_blank_frame(detector: SSDDetector) -> None:
    frame = read_photo("dog.jpg")
    frame[:] = 128
    assert detector.detect(frame, min_score=0.5) == []


def test_labels_file_formats(tmp_path: Path) -> None:
    labels = load_labels(asset(LABELS))
    assert labels[0] == "person" and labels[17] == "dog" and labels[89] == "toothbrush"
    assert 11 not in labels  # a COCO id with no class: the file skips it
    plain = tmp_path / "labelmap.txt"
    plain.write_text("???\nperson\nbicycle\n???\ncar\n")
    assert load_labels(plain) == {0: "person", 1: "bicycle", 3: "car"}


def test_load_model_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.tflite"):
        load_model(tmp_path / "nope.tflite")
    odd = tmp_path / "model.pt"
    odd.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unknown model format"):
        load_model(odd)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelLoadError, match=r"broken\.tflite"):
        load_model(broken)


def test_model_reports_its_tensors() -> None:
    model = load_model(asset(MODEL))
    (image,) = model.inputs
    assert image.shape == (1, 300, 300, 3)
    assert image.dtype == "uint8"
    assert (image.scale, image.zero_point) == (0.0078125, 128)
    assert [o.shape for o in model.outputs] == [(1, 20, 4), (1, 20), (1, 20), (1,)]
    assert model.runtime.startswith(("ai-edge-litert", "tflite-runtime"))
