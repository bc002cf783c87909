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
  scales and zero points to the exporter (:func:`framework.export.export_int8_onnx`), so ONNX Runtime
  computes what the validation step scored.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.espcn import ESPCN

__all__ = ["ActivationFakeQuant", "Int8SimulatedESPCN", "fake_quant_weight"]


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

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        if state_dict and not any(key.startswith("net.") for key in state_dict):  # a float ESPCN's weights
            return self.net.load_state_dict(state_dict, strict=strict, assign=assign)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
