"""TFLite models through ai-edge-litert, or tflite-runtime when only that is installed."""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.inference.base import DescribedModel, ModelLoadError, TensorInfo

# Tried in order: ai-edge-litert is the maintained runtime (and works with
# numpy 2); tflite-runtime is the older wheel some boards still ship.
_RUNTIMES: tuple[tuple[str, str], ...] = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
)


def _import_interpreter_class(path: Path) -> tuple[Any, str]:
    failures: list[str] = []
    for module_name, distribution in _RUNTIMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            failures.append(f"{distribution}: {error}")
            continue
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return module.Interpreter, f"{distribution} {version}"
    raise ModelLoadError(
        f"cannot load {path}: no TFLite runtime is installed "
        f"(pip install ai-edge-litert, or tflite-runtime); tried {'; '.join(failures)}"
    )


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorInfo(
        name=str(detail["name"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TFLiteModel(DescribedModel):
    """One TFLite interpreter. `run` is blocking; calls are serialised by a lock
    because an interpreter's tensors are shared state."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        interpreter_class, self._runtime = _import_interpreter_class(path)
        try:
            self._interpreter = interpreter_class(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelLoadError(f"cannot load {path} with {self._runtime}: {error}") from error
        self._input_details: list[dict[str, Any]] = self._interpreter.get_input_details()
        self._output_details: list[dict[str, Any]] = self._interpreter.get_output_details()
        self._inputs = tuple(_tensor_info(d) for d in self._input_details)
        self._outputs = tuple(_tensor_info(d) for d in self._output_details)
        self._lock = threading.Lock()

    def run(self, inputs: list[npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        if len(inputs) != len(self._input_details):
            raise ValueError(f"model takes {len(self._input_details)} inputs, got {len(inputs)}")
        with self._lock:
            for detail, array in zip(self._input_details, inputs, strict=True):
                self._interpreter.set_tensor(detail["index"], array)
            self._interpreter.invoke()
            # get_tensor copies, so results stay valid after the next invoke.
            return [self._interpreter.get_tensor(d["index"]) for d in self._output_details]
