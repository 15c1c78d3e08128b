"""audio-capture, audio-classifier and telemetry-recorder refuse bad settings
at start-up (exit 2), naming the variable — before touching the broker."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from tests.harness.stage_process import REPO

_UNKNOWN_CLASS = orjson.dumps({"glass": {"class_names": ["Glas"]}}).decode()


@pytest.mark.parametrize(
    ("module", "env", "named"),
    [
        ("services.audio_capture", {"EDGEGW_AUDIO_FILES": "/nonexistent.wav"}, "AUDIO_FILES"),
        ("services.audio_capture", {}, "EDGEGW_ALSA_DEVICE"),  # neither source
        (
            "services.audio_capture",
            {"EDGEGW_ALSA_DEVICE": "default", "EDGEGW_CHUNK_S": "0"},
            "CHUNK_S",
        ),
        ("services.audio_classifier", {"EDGEGW_MODEL_DIR": "/nonexistent"}, "EDGEGW_MODEL_DIR"),
        ("services.audio_classifier", {"EDGEGW_TOP_K": "0"}, "EDGEGW_TOP_K"),
        (
            "services.audio_classifier",
            {"EDGEGW_CLASSES_OF_INTEREST": _UNKNOWN_CLASS},
            "EDGEGW_CLASSES_OF_INTEREST",
        ),
        ("services.telemetry_recorder", {"EDGEGW_INFLUX_URL": "localhost:8086"}, "INFLUX_URL"),
        (
            "services.telemetry_recorder",
            {"EDGEGW_BATCH_SIZE": "500", "EDGEGW_MAX_BUFFERED_POINTS": "10"},
            "max_buffered_points",
        ),
    ],
)
def test_bad_settings_stop_the_stage_at_start_naming_the_variable(
    module: str, env: dict[str, str], named: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EDGEGW_")}
    done = subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        env={**clean, "EDGEGW_MQTT_PORT": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert named in done.stderr
