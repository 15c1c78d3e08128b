"""object-detector's side of the frame's pixels: simplejpeg decodes the JPEG that
camera-capture's OpenCV encoded, to RGB, refusing anything that is not a whole
JPEG with the module's own error; snapshots are cut and encoded with simplejpeg;
and neither stage loads the other's image library (OpenCV is ~16 MB a process)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from schemas.video import DetectionBox
from services.media.jpeg_decode import decode_jpeg, decode_jpeg_image, frame_size, rgb_image
from services.media.jpeg_encode import encode_jpeg
from services.media.jpeg_frame import CorruptJpegError
from services.object_detector.snapshots import crop_snapshot
from tests.harness.assets import CACHE, MEDIA, require
from tests.harness.stage_process import REPO

MODEL = CACHE / "models" / "mobilenet_ssd_v2_coco_quant_postprocess.tflite"


def noise_jpeg(width: int = 32, height: int = 24) -> bytes:
    rng = np.random.default_rng(7)
    return encode_jpeg(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), 80)


def test_the_cameras_bgr_comes_out_rgb() -> None:
    bgr = np.zeros((16, 24, 3), np.uint8)
    bgr[:, :, 2] = 220  # red, in OpenCV's order
    decoded = decode_jpeg(encode_jpeg(bgr, 95))
    assert decoded.shape == (16, 24, 3)
    red, green, blue = (float(decoded[:, :, channel].mean()) for channel in range(3))
    assert red > 200 and green < 20 and blue < 20


def test_a_grey_jpeg_decodes_to_three_channels() -> None:
    grey = encode_jpeg(np.full((12, 20), 90, np.uint8), 90)
    image = decode_jpeg_image(grey)
    assert image.mode == "RGB" and image.size == (20, 12)


def test_the_decoders_own_errors_become_corrupt_jpeg_errors() -> None:
    jpeg = noise_jpeg()
    scan = jpeg.index(b"\xff\xda")
    for bad in (
        jpeg[:scan] + b"\xff\xd9",  # no scan at all
        jpeg[: scan + 2] + b"\xff\xff" + jpeg[scan + 4 :],  # a scan header past the end
    ):
        with pytest.raises(CorruptJpegError, match="undecodable"):
            decode_jpeg(bad)


@given(st.data())
def test_damaged_bytes_decode_whole_or_raise_the_modules_error(data: st.DataObject) -> None:
    jpeg = bytearray(noise_jpeg())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(2, len(jpeg) - 3))
        jpeg[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):  # cut short, with an end-of-image marker stuck on
        jpeg = jpeg[: data.draw(st.integers(2, len(jpeg)))] + b"\xff\xd9"
    try:
        frame = decode_jpeg(bytes(jpeg))
    except CorruptJpegError:
        return
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8


def test_frames_as_images_or_arrays() -> None:
    array = np.zeros((10, 30, 3), np.uint8)
    assert frame_size(array) == frame_size(rgb_image(array)) == (30, 10)
    with pytest.raises(ValueError, match="H x W x 3"):
        rgb_image(np.zeros((10, 30), np.uint8))
    with pytest.raises(ValueError, match="mode L"):
        rgb_image(Image.new("L", (4, 4)))


def test_a_snapshot_is_the_box_and_its_margin_from_the_full_frame() -> None:
    frame = np.full((200, 300, 3), (30, 60, 90), np.uint8)
    frame[50:150, 100:200] = (250, 10, 10)  # the object: red, in RGB
    box = DetectionBox(100, 50, 200, 150)
    from_image = crop_snapshot(rgb_image(frame), box)
    from_array = crop_snapshot(frame, box)
    assert from_image is not None and from_image == from_array
    with Image.open(io.BytesIO(from_image)) as crop:
        assert crop.format == "JPEG" and crop.size == (121, 121)  # 10 % a side, clipped
        red, green, blue = (int(v) for v in np.asarray(crop.convert("RGB"))[60, 60])
    assert red > 200 and green < 50 and blue < 50
    assert crop_snapshot(frame, DetectionBox(0.2, 0.2, 0.9, 0.9)) is None  # under 2 px


def test_the_detector_never_loads_opencv_nor_camera_capture_pillow() -> None:
    """Imported, and at run time: a real frame decoded, detected and cropped."""
    detector = f"""
import sys
from pathlib import Path
import services.object_detector.__main__
from services.inference import load_model
from services.media.jpeg_decode import decode_jpeg_image
from services.object_detector.snapshots import crop_snapshot
from services.object_detector.ssd import SSDDetector
frame = decode_jpeg_image(Path({str(require(MEDIA / "dog.jpg"))!r}).read_bytes())
detector = SSDDetector(load_model(Path({str(require(MODEL))!r})), {{17: "dog"}})
found = detector.detect(frame, min_score=0.5)
assert found and all(crop_snapshot(frame, d.box) for d in found)
print("cv2" in sys.modules)
"""
    camera = "import sys, services.camera_capture.__main__; print('PIL' in sys.modules)"
    for code in (detector, camera):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
        )
        assert done.stdout.split() == ["False"], done.stdout + done.stderr
