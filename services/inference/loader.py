"""Pick the runtime for a model file by its suffix."""

from __future__ import annotations

from pathlib import Path

from services.inference.base import InferenceModel, ModelLoadError


def load_model(path: Path, threads: int = 1) -> InferenceModel:
    """Load a .tflite or .onnx model; raises ModelLoadError naming the path."""
    if not path.is_file():
        raise ModelLoadError(f"model file {path} does not exist (run `make assets`?)")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from services.inference.tflite_backend import TFLiteModel

        return TFLiteModel(path, threads=threads)
    if suffix == ".onnx":
        from services.inference.onnx_backend import ONNXModel

        return ONNXModel(path, threads=threads)
    raise ModelLoadError(f"cannot load {path}: unknown model format {suffix!r} (.tflite or .onnx)")
