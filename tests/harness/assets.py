"""Where the assets that `make assets` fetches live (models and media under
the git-ignored `.cache`), and the one way a test asks for one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from services.audio_classifier.yamnet import YamnetClassifier

from tests.harness.stage_process import REPO

CACHE = REPO / ".cache"
MEDIA = CACHE / "media"
AUDIO_DIR = MEDIA / "audio"
VIDEO = MEDIA / "vtest.avi"
YAMNET_DIR = CACHE / "models" / "yamnet"


def require(path: Path) -> Path:
    """`path`, or the test fails saying how to fetch it."""
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make assets` (tools/fetch_*_assets.sh)")
    return path


def load_yamnet() -> YamnetClassifier:
    """The real YAMNet on one thread (imported here: only audio tests pay for it)."""
    from services.audio_classifier.yamnet import YamnetClassifier

    for name in ("model.onnx", "model.data", "yamnet_class_map.csv"):
        require(YAMNET_DIR / name)
    return YamnetClassifier.load(YAMNET_DIR, threads=1)
