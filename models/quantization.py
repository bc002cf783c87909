"""Quantisation-aware training (QAT) of ESPCN for int8 inference with ONNX Runtime.

Int8 simulated in float ("fake quantisation", Jacob et al., CVPR 2018, "Quantization and Training of Neural
Networks for Efficient Integer-Arithmetic-Only Inference"): ``q(x) = s·(clamp(round(x/s) + z, lo, hi) − z)``
in the forward pass, the identity in the backward pass (straight-through estimator), so the weights learn to
tolerate the rounding that int8 inference will apply. The placement mirrors ONNX Runtime's static QDQ
quantisation of the exported float net (``onnxruntime.quantization.quantize_static``, QDQ format):

- every conv weight: int8, symmetric, one scale per output channel, ``s = max|w| / 127``;
- the input, every conv / activation output and the output activation: uint8, one affine range per tensor.
  During training a range follows the exponential moving average of the batch min / max (the paper's
  scheme); in eval mode it is frozen, and :meth:`Int8SimulatedESPCN.activation_qparams` hands the same
  scales and zero points to the int8 export (:func:`export_int8_onnx`, what
  :meth:`Int8SimulatedESPCN.export_onnx` does when :func:`framework.export.export_net` exports the net), so
  ONNX Runtime computes what the validation step scored.

:func:`quantize_int8` is ONNX Runtime's static int8 quantisation of any exported float model (calibrated
ranges after training, or the given ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from framework.export import export_onnx
from models.espcn import ESPCN

__all__ = [
    "ActivationFakeQuant",
    "Int8SimulatedESPCN",
    "export_int8_onnx",
    "fake_quant_weight",
    "quantize_int8",
]


def fake_quant_weight(weight: Tensor) -> Tensor:
    """Per-output-channel symmetric int8 fake quantisation of a conv weight (O, I, kh, kw), ``s = max|w|/127``
    (ONNX Runtime's symmetric int8 range is [−127, 127])."""
    scale = (weight.detach().abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-12).float()
    zero_point = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, scale, zero_point, 0, -127, 127)


class ActivationFakeQuant(nn.Module):
    """uint8 affine fake quantisation of one activation tensor; its range [low, high] (always containing 0,
    so zero is exact) is the EMA of the batch min / max while training and frozen in eval mode.

    Args:
        momentum: EMA weight of a new batch (the first batch sets the range).
        fixed_range: (low, high) that never moves, e.g. (0, 1) for an image input.
    """

    def __init__(self, momentum: float = 0.01, fixed_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        if not 0 < momentum <= 1:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        self.momentum = momentum
        self.fixed = fixed_range is not None
        low, high = fixed_range if fixed_range is not None else (0.0, 0.0)
        self.register_buffer("low", torch.tensor(float(low)))
        self.register_buffer("high", torch.tensor(float(high)))
        self.register_buffer("initialized", torch.tensor(self.fixed))

    @torch.no_grad()
    def _observe(self, x: Tensor) -> None:
        low, high = x.min().float(), x.max().float()
        if not bool(self.initialized):
            self.low.copy_(low)
            self.high.copy_(high)
            self.initialized.fill_(True)
        else:
            self.low.lerp_(low, self.momentum)
            self.high.lerp_(high, self.momentum)

    def qparams(self) -> tuple[float, int]:
        """(scale, zero point) of the current range: ``s = (high − low)/255``, ``z = round(−low/s)``."""
        if not bool(self.initialized):
            raise ValueError("an activation range is unset: train the net (QAT) before quantising it")
        low, high = min(float(self.low), 0.0), max(float(self.high), 0.0)
        scale = max(high - low, 1e-8) / 255
        return scale, round(-low / scale)

    def forward(self, x: Tensor) -> Tensor:
        if self.training and not self.fixed:
            self._observe(x)
        if not bool(self.initialized):  # eval before any training batch: no range to quantise to yet
            return x
        scale, zero_point = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x.float(), scale, zero_point, 0, 255).to(x.dtype)

    def extra_repr(self) -> str:
        return f"low={float(self.low):.4g}, high={float(self.high):.4g}, fixed={self.fixed}"


class Int8SimulatedESPCN(nn.Module):
    """An :class:`~models.espcn.ESPCN` whose forward pass rounds as its int8 ONNX Runtime export will:
    input → [conv (int8 weights) → q → act → q] × L → conv → q → output act → q → pixel shuffle.

    Its state dict is the float net's (under ``net.``) plus the activation ranges; :meth:`load_state_dict`
    also accepts a plain float ESPCN's state dict, so ``init_weights=<trained run>.ckpt`` starts QAT from it.
    """

    def __init__(self, net: ESPCN, momentum: float = 0.01) -> None:
        super().__init__()
        if not isinstance(net, ESPCN):
            raise TypeError(f"Int8SimulatedESPCN wraps an ESPCN, got {type(net).__name__}")
        self.net = net
        self.input_quant = ActivationFakeQuant(momentum, fixed_range=(0.0, 1.0))
        # one range per body module output (convs and activations alike) and one for the output activation
        self.output_quants = nn.ModuleList(ActivationFakeQuant(momentum) for _ in range(len(net.body) + 1))

    @property
    def upscale_factor(self) -> int:
        return self.net.upscale_factor

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_quant(x)
        for layer, quant in zip(self.net.body, self.output_quants, strict=False):
            if isinstance(layer, nn.Conv2d):
                x = F.conv2d(x, fake_quant_weight(layer.weight), layer.bias, layer.stride, layer.padding)
            else:
                x = layer(x)
            x = quant(x)
        x = self.output_quants[-1](self.net.output_activation(x))
        return self.net.shuffle(x)

    def activation_qparams(self) -> list[tuple[float, int]]:
        """(scale, zero point) of the input, then of every body module's output and the output activation's,
        in the order of the exported graph's nodes."""
        return [quant.qparams() for quant in (self.input_quant, *self.output_quants)]

    @property
    def onnx_tolerance(self) -> float:
        """How far ONNX Runtime's int8 model may be from this simulation: 2.5 steps of the uint8 output. It
        may round a tie the other way (one step), and on x86 CPUs without VNNI its u8×s8 kernels add pairs of
        products in saturating int16 (VPMADDUBSW; ONNX Runtime's quantization docs say so): measured 2 steps
        on an AVX2 EPYC (`tests/test_quantization.py`), under 1.5 on AVX-512 VNNI."""
        return 2.5 * self.activation_qparams()[-1][0]

    def export_onnx(self, path: str | Path, example: Tensor) -> Path:
        """This net as the int8 ONNX model it simulates (:func:`export_int8_onnx`); the hook
        :func:`framework.export.export_net` calls. Raises ValueError before any training."""
        return export_int8_onnx(self, path, example)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        if state_dict and not any(key.startswith("net.") for key in state_dict):  # a float ESPCN's weights
            return self.net.load_state_dict(state_dict, strict=strict, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def quantize_int8(
    float_path: str | Path,
    path: str | Path,
    calibration: list[Tensor],
    overrides: dict[str, tuple[float, int]] | None = None,
) -> Path:
    """ONNX Runtime's static int8 quantisation (QDQ format) of the model at ``float_path`` into ``path``: int8
    per-channel symmetric weights, uint8 activations whose ranges are the min / max over the ``calibration``
    inputs, except the tensors in ``overrides`` (name → (scale, zero point)), which keep the given ones."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(float_path)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter({input_name: x.float().numpy()} for x in calibration)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    tensor_overrides = {
        name: [{"scale": np.array(scale, np.float32), "zero_point": np.array(zero_point, np.uint8)}]
        for name, (scale, zero_point) in (overrides or {}).items()
    }
    quantize_static(
        str(float_path),
        str(path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"TensorQuantOverrides": tensor_overrides, "WeightSymmetric": True},
    )
    return Path(path)


def export_int8_onnx(net: Int8SimulatedESPCN, path: str | Path, example: Tensor) -> Path:
    """Export a quantisation-aware net (``net.net`` the float net, traced on ``example``;
    ``net.activation_qparams()`` its frozen uint8 ranges) to an int8 QDQ ONNX model that ONNX Runtime runs
    with integer convolutions: for the graph input and the output of every compute node (all but
    DepthToSpace, in graph order) the (scale, zero point) that QAT learned, so ONNX Runtime rounds where the
    training's simulation did. Raises ValueError when a range is unset (an untrained net)."""
    import onnx

    path = Path(path)
    qparams = net.activation_qparams()
    float_path = export_onnx(net.net, path.with_name(f"{path.stem}.float.onnx"), example)
    graph = onnx.load(str(float_path)).graph
    tensors = [graph.input[0].name] + [n.output[0] for n in graph.node if n.op_type != "DepthToSpace"]
    if len(tensors) != len(qparams):
        raise ValueError(
            f"{float_path} has {len(tensors)} tensors to quantise, the net {len(qparams)} ranges"
        )
    # every range is overridden: the one calibration image only lets the quantiser run
    calibration = [torch.zeros(1, *example.shape[1:])]
    quantize_int8(float_path, path, calibration, dict(zip(tensors, qparams, strict=True)))
    float_path.unlink()
    return path
