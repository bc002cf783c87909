"""A small reader for TensorFlow Lite flatbuffers: tensors (dequantised) and operators, no TensorFlow.

The flatbuffer is parsed with the ``tflite`` package (the TFLite schema compiled for Python, on PyPI); this
module only turns it into plain Python: a list of :class:`TFLiteTensor` (shape, dtype, raw constant data and
quantisation parameters) and a list of :class:`TFLiteOp` (builtin name, input / output tensor indices and the
options a converter needs: stride, dilation, padding, fused activation).

Dequantisation follows the TFLite quantisation spec: ``real = (q − zero_point) · scale``, with one
(scale, zero_point) per slice along ``quantized_dimension`` when the file stores per-channel parameters
(int8 conv weights: dimension 0 = output channels; depthwise: dimension 3) and one pair per tensor otherwise.
Int32 biases are quantised too (scale = input scale · weight scale, zero point 0), so they dequantise the same
way. Layouts are TFLite's: conv weights OHWI, depthwise weights 1HWC, activations NHWC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from framework.errors import UserError

__all__ = ["TFLiteGraph", "TFLiteOp", "TFLiteTensor", "read_tflite"]

# tflite.TensorType → numpy dtype (the types a weights file holds)
_NUMPY_DTYPES: dict[int, type] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    9: np.int8,
    10: np.float64,
}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


@dataclass(frozen=True)
class TFLiteTensor:
    """One tensor of the graph; ``data`` holds the raw constant values (None for activations)."""

    name: str
    shape: tuple[int, ...]
    dtype: type
    data: np.ndarray | None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    quantized_dimension: int = 0

    @property
    def is_quantized(self) -> bool:
        return self.scale is not None and self.scale.size > 0

    def dequantize(self) -> np.ndarray:
        """The constant as float32: ``(q − zero_point) · scale``, per channel along ``quantized_dimension``
        when the file stores one scale per channel."""
        if self.data is None:
            raise ValueError(f"tensor {self.name!r} is an activation, not a constant")
        values = self.data.astype(np.float32)
        if not self.is_quantized or self.dtype in (np.float32, np.float16, np.float64):
            return values
        shape = [1] * values.ndim
        if self.scale.size > 1:
            shape[self.quantized_dimension] = -1
        zero_point = self.zero_point.astype(np.float32).reshape(shape)
        return (values - zero_point) * self.scale.astype(np.float32).reshape(shape)


@dataclass(frozen=True)
class TFLiteOp:
    """One operator: builtin ``kind`` (e.g. ``"CONV_2D"``), tensor indices and its conv/pool options."""

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, int | str] = field(default_factory=dict)


@dataclass(frozen=True)
class TFLiteGraph:
    """The first subgraph of a TFLite model."""

    tensors: list[TFLiteTensor]
    ops: list[TFLiteOp]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def weight(self, op: TFLiteOp, position: int) -> np.ndarray:
        """Dequantised constant input ``position`` of ``op`` (1 = weights, 2 = bias for convolutions)."""
        return self.tensors[op.inputs[position]].dequantize()


def _tensor(tflite_tensor, buffers) -> TFLiteTensor:
    shape = tuple(int(s) for s in tflite_tensor.ShapeAsNumpy()) if tflite_tensor.ShapeLength() else ()
    type_id = tflite_tensor.Type()
    dtype = _NUMPY_DTYPES.get(type_id)
    data = None
    raw = buffers[tflite_tensor.Buffer()].DataAsNumpy() if tflite_tensor.Buffer() < len(buffers) else 0
    if isinstance(raw, np.ndarray) and raw.size:
        if dtype is None:
            raise ValueError(
                f"tensor {tflite_tensor.Name().decode()!r} has unsupported TFLite type {type_id}"
            )
        data = raw.view(dtype).reshape(shape)
    scale = zero_point = None
    dim = 0
    quant = tflite_tensor.Quantization()
    if quant is not None and quant.ScaleLength():
        scale = quant.ScaleAsNumpy().astype(np.float32)
        zero_point = quant.ZeroPointAsNumpy().astype(np.int64)
        dim = int(quant.QuantizedDimension())
    return TFLiteTensor(tflite_tensor.Name().decode(), shape, dtype, data, scale, zero_point, dim)


def _options(op, kind: str) -> dict[str, int | str]:
    """Stride, dilation, padding and fused activation of conv / depthwise / pool operators."""
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}
    if kind == "CONV_2D":
        opt = tflite.Conv2DOptions()
    elif kind == "DEPTHWISE_CONV_2D":
        opt = tflite.DepthwiseConv2DOptions()
    elif kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        opt = tflite.Pool2DOptions()
    else:
        return {}
    opt.Init(table.Bytes, table.Pos)
    out: dict[str, int | str] = {
        "stride": int(opt.StrideH()),
        "stride_w": int(opt.StrideW()),
        "padding": _PADDING.get(opt.Padding(), str(opt.Padding())),
        "activation": _ACTIVATION.get(opt.FusedActivationFunction(), str(opt.FusedActivationFunction())),
    }
    if kind != "AVERAGE_POOL_2D" and kind != "MAX_POOL_2D":
        out["dilation"] = int(opt.DilationHFactor())
        out["dilation_w"] = int(opt.DilationWFactor())
    if kind == "DEPTHWISE_CONV_2D":
        out["depth_multiplier"] = int(opt.DepthMultiplier())
    return out


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parse a ``.tflite`` file (first subgraph): tensors with their constants, operators in execution order.

    Raises:
        UserError: the ``tflite`` package is not installed.
        FileNotFoundError: no such file.
        ValueError: not a TFLite flatbuffer (its identifier is not ``TFL3``).
    """
    try:
        import tflite
    except ImportError as error:
        raise UserError(
            f"reading {path} needs the TFLite schema package: pip install tflite ({error})"
        ) from None

    path = Path(path)
    buf = path.read_bytes()
    if buf[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TFLite flatbuffer (identifier {buf[4:8]!r}, expected b'TFL3')")
    model = tflite.Model.GetRootAsModel(buf, 0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    graph = model.Subgraphs(0)
    tensors = [_tensor(graph.Tensors(i), buffers) for i in range(graph.TensorsLength())]
    kinds = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # schema ≥ 2.4 moved builtin codes > 127 to BuiltinCode; old files only fill the deprecated byte
        kinds.append(tflite.opcode2name(max(code.BuiltinCode(), code.DeprecatedBuiltinCode())))
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = kinds[op.OpcodeIndex()]
        ops.append(
            TFLiteOp(
                kind,
                tuple(int(t) for t in op.InputsAsNumpy()),
                tuple(int(t) for t in op.OutputsAsNumpy()),
                _options(op, kind),
            )
        )
    return TFLiteGraph(
        tensors,
        ops,
        tuple(int(t) for t in graph.InputsAsNumpy()),
        tuple(int(t) for t in graph.OutputsAsNumpy()),
    )
