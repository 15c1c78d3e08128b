"""One interface for every model runtime (TFLite via ai-edge-litert or
tflite-runtime, ONNX via onnxruntime), so a stage never knows which one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[np.generic]
    # Affine quantization of the tensor (real = scale * (q - zero_point));
    # (0.0, 0) when the tensor is not quantized. Read from the model itself.
    scale: float
    zero_point: int


class InferenceModel(Protocol):
    """A loaded model. `run` is blocking and CPU-bound: call it off the event loop."""

    @property
    def inputs(self) -> tuple[TensorInfo, ...]: ...

    @property
    def outputs(self) -> tuple[TensorInfo, ...]: ...

    @property
    def runtime(self) -> str:
        """Which runtime runs it, e.g. 'ai-edge-litert 2.3.0' or 'onnxruntime 1.23.0'."""
        ...

    def run(self, inputs: list[npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]: ...


class DescribedModel:
    """What every backend reports the same way once loaded: its tensors and
    its runtime. A backend sets the three attributes in `__init__`."""

    _inputs: tuple[TensorInfo, ...]
    _outputs: tuple[TensorInfo, ...]
    _runtime: str

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return self._outputs

    @property
    def runtime(self) -> str:
        return self._runtime


class ModelLoadError(RuntimeError):
    """The model file is missing, unreadable, or no runtime for it is installed."""
