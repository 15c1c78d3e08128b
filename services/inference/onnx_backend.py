"""ONNX models through onnxruntime (CPU provider).

onnxruntime does not expose a model's quantization parameters, and the `onnx`
package is a heavy dependency for reading a handful of scalars, so the few
fields needed are read straight from the protobuf wire format: for a graph
input consumed by a DequantizeLinear node (or an output produced by a
QuantizeLinear node) the scale and zero point are that node's initializers.
"""

from __future__ import annotations

import importlib.metadata
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.inference.base import DescribedModel, ModelLoadError, TensorInfo

_ONNX_TO_NUMPY: dict[str, np.dtype[np.generic]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint16)": np.dtype(np.uint16),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}

# ONNX TensorProto.DataType values we may meet as a scale or a zero point.
_FLOAT, _UINT8, _INT8, _UINT16, _INT16, _INT32, _FLOAT16 = 1, 2, 3, 4, 5, 6, 10
_RAW_FORMATS = {
    _FLOAT: "<f",
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _INT32: "<i",
    _FLOAT16: "<e",
}

# ---- the protobuf wire format, as far as ModelProto needs it ---------------

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def _read_varint(buffer: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _fields(buffer: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of one message."""
    position = 0
    while position < len(buffer):
        key, position = _read_varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == _VARINT:
            value, position = _read_varint(buffer, position)
        elif wire_type == _FIXED64:
            value, position = (
                int.from_bytes(buffer[position : position + 8], "little"),
                position + 8,
            )
        elif wire_type == _FIXED32:
            value, position = (
                int.from_bytes(buffer[position : position + 4], "little"),
                position + 4,
            )
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _read_varint(buffer, position)
            value, position = buffer[position : position + length], position + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, wire_type, value


@dataclass
class _Node:
    op_type: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    constant: bytes | None = None  # TensorProto of a Constant node's `value`


@dataclass
class _Graph:
    nodes: list[_Node] = field(default_factory=list)
    initializers: dict[str, bytes] = field(default_factory=dict)  # name -> TensorProto


def _tensor_name(tensor: bytes) -> str:
    for number, _, value in _fields(tensor):
        if number == 8 and isinstance(value, bytes):
            return value.decode()
    return ""


def _parse_node(buffer: bytes) -> _Node:
    node = _Node()
    for number, _, value in _fields(buffer):
        if not isinstance(value, bytes):
            continue
        if number == 1:
            node.inputs.append(value.decode())
        elif number == 2:
            node.outputs.append(value.decode())
        elif number == 4:
            node.op_type = value.decode()
        elif number == 5:  # AttributeProto; a Constant's tensor is field 5 (t)
            for attribute_number, _, attribute_value in _fields(value):
                if attribute_number == 5 and isinstance(attribute_value, bytes):
                    node.constant = attribute_value
    return node


def _parse_graph(model_bytes: bytes) -> _Graph:
    graph = _Graph()
    for number, _, value in _fields(model_bytes):
        if number != 7 or not isinstance(value, bytes):  # ModelProto.graph
            continue
        for graph_number, _, graph_value in _fields(value):
            if not isinstance(graph_value, bytes):
                continue
            if graph_number == 1:
                graph.nodes.append(_parse_node(graph_value))
            elif graph_number == 5:
                graph.initializers[_tensor_name(graph_value)] = graph_value
    for node in graph.nodes:
        if node.op_type == "Constant" and node.constant is not None and node.outputs:
            graph.initializers[node.outputs[0]] = node.constant
    return graph


def _scalar(tensor: bytes) -> float | None:
    """The first element of a TensorProto, or None if it is stored elsewhere."""
    data_type = 0
    for number, _, value in _fields(tensor):
        if number == 2 and isinstance(value, int):
            data_type = value
        elif number == 9 and isinstance(value, bytes) and data_type in _RAW_FORMATS:
            fmt = _RAW_FORMATS[data_type]
            return float(struct.unpack_from(fmt, value)[0])
        elif number == 4:  # float_data, packed or not
            if isinstance(value, bytes):
                return float(struct.unpack_from("<f", value)[0])
            return float(struct.unpack("<f", value.to_bytes(4, "little"))[0])
        elif number == 5:  # int32_data holds int8/uint8/int16/int32 values
            raw = _read_varint(value, 0)[0] if isinstance(value, bytes) else value
            # A negative int32 is sign-extended to 64 bits on the wire.
            return float(raw - (1 << 64) if raw >= 1 << 63 else raw)
    return None


def _quantization_from_node(graph: _Graph, node: _Node) -> tuple[float, int]:
    scale_tensor = graph.initializers.get(node.inputs[1]) if len(node.inputs) > 1 else None
    zero_tensor = graph.initializers.get(node.inputs[2]) if len(node.inputs) > 2 else None
    scale = _scalar(scale_tensor) if scale_tensor is not None else None
    if scale is None:
        return 0.0, 0
    zero_point = _scalar(zero_tensor) if zero_tensor is not None else 0.0
    return scale, int(zero_point or 0)


def quantization_parameters(
    model_bytes: bytes, inputs: list[str], outputs: list[str]
) -> dict[str, tuple[float, int]]:
    """Scale and zero point of each quantized graph input and output, by name.

    An input counts as quantized when a DequantizeLinear consumes it directly,
    an output when a QuantizeLinear produces it (the QDQ format onnxruntime's
    quantizer writes). Anything else maps to (0.0, 0).
    """
    graph = _parse_graph(model_bytes)
    found: dict[str, tuple[float, int]] = dict.fromkeys([*inputs, *outputs], (0.0, 0))
    for node in graph.nodes:
        if node.op_type == "DequantizeLinear" and node.inputs and node.inputs[0] in inputs:
            found[node.inputs[0]] = _quantization_from_node(graph, node)
        elif node.op_type == "QuantizeLinear" and node.outputs and node.outputs[0] in outputs:
            found[node.outputs[0]] = _quantization_from_node(graph, node)
    return found


# ---- the model ---------------------------------------------------------------


def _import_onnxruntime(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise ModelLoadError(
            f"cannot load {path}: onnxruntime is not installed (pip install onnxruntime): {error}"
        ) from error
    return onnxruntime


def _shape(raw_shape: list[Any]) -> tuple[int, ...]:
    # A symbolic dimension (a batch named 'N') is reported as -1.
    return tuple(d if isinstance(d, int) else -1 for d in raw_shape)


class ONNXModel(DescribedModel):
    """One onnxruntime session on the CPU provider."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        onnxruntime = _import_onnxruntime(path)
        self._runtime = f"onnxruntime {importlib.metadata.version('onnxruntime')}"
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # One small session: the arena keeps its high-water mark for good, and
        # the memory pattern pre-plans buffers we do not need. Off: -2 MB for
        # YAMNet at the same speed (2.2-2.5 ms per patch here, 3.4 with both on).
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            model_bytes = path.read_bytes()
        except Exception as error:  # onnxruntime raises its own, unexported error types
            raise ModelLoadError(f"cannot load {path} with {self._runtime}: {error}") from error
        input_args = self._session.get_inputs()
        output_args = self._session.get_outputs()
        try:
            quantization = quantization_parameters(
                model_bytes, [a.name for a in input_args], [a.name for a in output_args]
            )
        except (ValueError, IndexError, struct.error):
            # A graph we cannot read still runs; it just reports no quantization.
            quantization = {}
        self._input_names = [a.name for a in input_args]
        self._output_names = [a.name for a in output_args]
        self._inputs = tuple(self._info(a, quantization) for a in input_args)
        self._outputs = tuple(self._info(a, quantization) for a in output_args)
        self._lock = threading.Lock()

    @staticmethod
    def _info(arg: Any, quantization: dict[str, tuple[float, int]]) -> TensorInfo:
        scale, zero_point = quantization.get(arg.name, (0.0, 0))
        return TensorInfo(
            name=arg.name,
            shape=_shape(arg.shape),
            dtype=_ONNX_TO_NUMPY.get(arg.type, np.dtype(np.float32)),
            scale=scale,
            zero_point=zero_point,
        )

    def run(self, inputs: list[npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        if len(inputs) != len(self._input_names):
            raise ValueError(f"model takes {len(self._input_names)} inputs, got {len(inputs)}")
        feed = dict(zip(self._input_names, inputs, strict=True))
        # Sessions are thread-safe, but one run at a time keeps the thread
        # count the caller asked for.
        with self._lock:
            results: list[npt.NDArray[np.generic]] = self._session.run(self._output_names, feed)
        return results
