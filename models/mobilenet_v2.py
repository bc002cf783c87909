"""MobileNetV2 1.0 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018) with
the genuine ImageNet weights of a TensorFlow Lite file, and a dilated feature mode for segmentation.

The network is the TFLite graph's, layer for layer: batch norm is folded into every convolution (each conv has
a bias and no normalisation layer follows), ReLU6 activations, linear bottleneck projections, and TensorFlow
"SAME" padding — stride-2 3×3 convolutions pad asymmetrically, more on the bottom / right (0, 1, 0, 1) for
even sizes, computed from the input size here so odd sizes match TF as well. Input: RGB in [0, 1] (the
project's convention), mapped to TF's ``x / 127.5 − 1`` on [0, 255] as ``2x − 1``.

Weights come from ``../shared/weights/tf2_mobilenet_v2_1.0_224_ptq.tflite`` (Keras MobileNetV2, int8
per-channel weights, int32 biases) or any MobileNetV2 1.0 TFLite file given by path (the TF-slim
``mobilenet_v2_1.0_224_quant.tflite`` works too): :func:`tflite_state_dict` dequantises them
(``w = (q − zero_point) · scale``), turns OHWI into OIHW and depthwise 1HWC into C1HW, and caches the result
per process (conversion ~0.2 s). The classifier has 1001 outputs: index 0 is "background", index k the k-th
ImageNet class of the usual 1000 (so ``argmax − 1`` is the torchvision class index).

Dilated mode (``output_stride`` 16 or 8), as DeepLab's MobileNetV2 (Chen et al., "Rethinking Atrous
Convolution", 2017; TF-slim ``mobilenet.py``): once the requested stride is reached, a block that would stride
by 2 keeps stride 1 (and the current rate) and every later 3×3 depthwise conv is dilated by the product of
the strides removed, so the pretrained filters see the same context at a finer sampling.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from framework.errors import UserError
from framework.paths import PROJECT_ROOT, shared_weights_dir
from models.tflite import read_tflite

__all__ = [
    "DEFAULT_TFLITE_FILE",
    "INVERTED_RESIDUAL_SETTING",
    "ConvAct",
    "InvertedResidual",
    "MobileNetV2",
    "default_weights_path",
    "mobilenet_v2",
    "tf_same_padding",
    "tflite_state_dict",
]

DEFAULT_TFLITE_FILE = "tf2_mobilenet_v2_1.0_224_ptq.tflite"

# (expansion t, output channels c, repeats n, first stride s): Sandler et al. 2018, Table 2.
INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# Blocks whose outputs forward_features returns: the last block at stride 4 (24 channels), the last one
# before the stride-32 stage (96 channels, PSPNet's auxiliary-head input) and the last one (320 channels).
_FEATURE_BLOCKS = {"low": 2, "aux": 12, "out": 16}

_warned_random = False


def default_weights_path() -> Path:
    """The shared file, in ``$IMAGING_LAB_SHARED_WEIGHTS`` (as conf/paths) or ``<repo>/../shared/weights``."""
    return shared_weights_dir() / DEFAULT_TFLITE_FILE


def tf_same_padding(size: tuple[int, int], kernel: int, stride: int, dilation: int) -> tuple[int, ...]:
    """TensorFlow "SAME" padding as ``F.pad``'s (left, right, top, bottom): output ``ceil(n / stride)``,
    total padding ``(out − 1)·stride + (kernel − 1)·dilation + 1 − n``, the odd pixel at the end.

    TF clips the total at 0; it is never negative when ``(kernel − 1)·dilation + 1 ≥ stride`` (checked), and
    leaving the clip out keeps the arithmetic branch-free for ONNX export with dynamic sizes (which needs a
    minimum size ≥ 3 on the dynamic dims: ``torch.export.Dim("h", min=…)``, else export guards on size 1).
    """
    if (kernel - 1) * dilation + 1 < stride:
        raise ValueError(f"kernel {kernel} with dilation {dilation} is narrower than stride {stride}")
    pads = []
    for n in reversed(size):  # width first, as F.pad wants
        # ceil(n / stride) with non-negative operands: ONNX's integer Div truncates, Python's // floors
        total = ((n + stride - 1) // stride - 1) * stride + (kernel - 1) * dilation + 1 - n
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class ConvAct(nn.Module):
    """Conv (bias, batch norm folded in) → ReLU6 or nothing, with TF "SAME" padding.

    Stride-1 convs pad symmetrically inside the conv; strided ones pad explicitly from the input size.
    ``tf_stride`` remembers the stride of the TFLite layer this conv takes weights from (the dilated mode
    changes ``stride``, not the weights).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        relu6: bool = True,
        tf_stride: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.tf_stride = stride if tf_stride is None else tf_stride
        padding = 0 if stride > 1 else dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups=groups, bias=True
        )
        self.relu6 = relu6

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1 and self.kernel_size > 1:
            x = F.pad(x, tf_same_padding(x.shape[-2:], self.kernel_size, self.stride, self.dilation))
        x = self.conv(x)
        return F.relu6(x) if self.relu6 else x


class InvertedResidual(nn.Module):
    """1×1 expand (ReLU6) → 3×3 depthwise (ReLU6) → 1×1 linear projection, plus the input when the shape is
    kept (stride 1 and equal channels). ``expand_ratio = 1`` has no expansion conv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expand_ratio: int,
        stride: int = 1,
        dilation: int = 1,
        tf_stride: int | None = None,
    ) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand = ConvAct(in_channels, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvAct(hidden, hidden, 3, stride, dilation, groups=hidden, tf_stride=tf_stride)
        self.project = ConvAct(hidden, out_channels, relu6=False)
        self.use_residual = stride == 1 and in_channels == out_channels and (tf_stride or 1) == 1

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


def _block_plan(output_stride: int) -> list[tuple[int, int, int, int, int]]:
    """Per block (in, out, expand, stride, dilation, tf_stride) flattened; TF-slim's output_stride rule."""
    plan = []
    in_channels, current_stride, rate = 32, 2, 1
    for expand, out_channels, repeats, first_stride in INVERTED_RESIDUAL_SETTING:
        for i in range(repeats):
            tf_stride = first_stride if i == 0 else 1
            if tf_stride > 1 and current_stride == output_stride:
                stride, dilation = 1, rate
                rate *= tf_stride
            else:
                stride, dilation = tf_stride, rate
                current_stride *= tf_stride
            plan.append((in_channels, out_channels, expand, stride, dilation, tf_stride))
            in_channels = out_channels
    return plan


class MobileNetV2(nn.Module):
    """MobileNetV2 1.0: RGB (B, 3, H, W) in [0, 1] → ImageNet logits (B, 1001), or a feature dict.

    Args:
        num_classes: classifier outputs (1001 loads the ImageNet classifier; another number gets a new
            random classifier); ``None`` builds the backbone only (no 1280-channel conv, no classifier), as a
            segmentation network uses it.
        output_stride: 32 (the classifier's), 16 or 8 (dilated, for dense prediction).
        weights: ``"imagenet"`` for the shared TFLite file (:func:`default_weights_path`; missing → one
            warning and random weights), a path to a MobileNetV2 1.0 TFLite file (missing → UserError), or
            ``None`` for random weights without a warning (e.g. weights that a checkpoint will overwrite).

    ``forward_features`` returns ``{"low": (B, 24, H/4, W/4), "aux": (B, 96, H/s', W/s'), "out": (B, 320,
    H/s, W/s)}`` with s = ``output_stride`` and s' = min(s, 16) (sizes rounded up, as TF's "SAME").
    """

    feature_channels: dict[str, int] = {"low": 24, "aux": 96, "out": 320}  # noqa: RUF012

    def __init__(
        self,
        num_classes: int | None = 1001,
        output_stride: int = 32,
        weights: str | Path | None = "imagenet",
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 or None, got {num_classes}")
        self.output_stride = output_stride
        self.num_classes = num_classes
        self.stem = ConvAct(3, 32, 3, stride=2)
        self.blocks = nn.Sequential(
            *(
                InvertedResidual(i, o, t, s, d, tf_stride=ts)
                for i, o, t, s, d, ts in _block_plan(output_stride)
            )
        )
        if num_classes is not None:
            self.last_conv = ConvAct(320, 1280)
            self.classifier = nn.Linear(1280, num_classes)
        self._init_random()
        path = _resolve_weights(weights)
        if path is not None:
            self.load_tflite(path)

    def _init_random(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def convs(self) -> list[ConvAct]:
        """Every ConvAct in execution order (the order of the TFLite graph's convolutions)."""
        return [m for m in self.modules() if isinstance(m, ConvAct)]

    @torch.no_grad()
    def load_tflite(self, path: str | Path) -> None:
        """Copy the converted weights of a MobileNetV2 1.0 TFLite file into this network (cached per file)."""
        state = tflite_state_dict(path)
        convs = self.convs()
        if len(state["convs"]) < len(convs):
            raise UserError(f"{path} has {len(state['convs'])} convolutions, MobileNetV2 needs {len(convs)}")
        for i, (module, (weight, bias, tf_stride, relu6)) in enumerate(
            zip(convs, state["convs"], strict=False)
        ):
            if (
                weight.shape != module.conv.weight.shape
                or tf_stride != module.tf_stride
                or relu6 != module.relu6
            ):
                raise UserError(
                    f"{path} is not a MobileNetV2 1.0 file: its conv {i} is {tuple(weight.shape)} stride "
                    f"{tf_stride}, expected {tuple(module.conv.weight.shape)} stride {module.tf_stride}"
                )
            module.conv.weight.copy_(weight)
            module.conv.bias.copy_(bias)
        if self.num_classes is not None and self.num_classes == state["classifier"][0].shape[0]:
            self.classifier.weight.copy_(state["classifier"][0])
            self.classifier.bias.copy_(state["classifier"][1])

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """RGB in [0, 1] → ``{"low", "aux", "out"}`` feature maps (see the class docstring)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"MobileNetV2 expects RGB (B, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        x = self.stem(x * 2.0 - 1.0)
        features = {}
        wanted = {index: name for name, index in _FEATURE_BLOCKS.items()}
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in wanted:
                features[wanted[index]] = x
        return features

    def forward(self, x: Tensor) -> Tensor:
        if self.num_classes is None:
            raise ValueError("this MobileNetV2 has no classifier (num_classes=None): call forward_features")
        x = self.last_conv(self.forward_features(x)["out"])
        return self.classifier(x.mean(dim=(2, 3)))


def _resolve_weights(weights: str | Path | None) -> Path | None:
    """``"imagenet"`` → the shared file, or None after one warning when it is missing; a path must exist."""
    global _warned_random
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        path = default_weights_path()
        if path.is_file():
            return path
        if not _warned_random:
            _warned_random = True
            warnings.warn(
                f"MobileNetV2 uses RANDOM weights: {path} is missing. Put {DEFAULT_TFLITE_FILE} there, set "
                "IMAGING_LAB_SHARED_WEIGHTS, or pass weights=<path to a MobileNetV2 1.0 .tflite>.",
                UserWarning,
                stacklevel=3,
            )
        return None
    path = Path(weights).expanduser()
    if not path.is_absolute():
        path = PROJECT_ROOT / path
    if not path.is_file():
        raise UserError(
            f"MobileNetV2 weights file {path} does not exist: give a MobileNetV2 1.0 .tflite path"
        )
    return path


def tflite_state_dict(path: str | Path) -> dict[str, list | tuple]:
    """Converted weights of a MobileNetV2 1.0 TFLite file, cached per process (keyed by path and mtime).

    Returns ``{"convs": [(weight OIHW, bias, tf_stride, relu6), …] in graph order, "classifier": (W, b)}``;
    the last 1×1 conv of the graph (1280 → classes) becomes the linear classifier.
    """
    path = Path(path).resolve()
    return _convert(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _convert(path: str, mtime_ns: int) -> dict[str, list | tuple]:
    graph = read_tflite(path)
    convs = []
    for op in graph.ops:
        if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        weight = graph.weight(op, 1)
        bias = graph.weight(op, 2) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        # conv OHWI → OIHW; depthwise 1HWC → C1HW (groups = C)
        weight = weight.transpose((0, 3, 1, 2) if op.kind == "CONV_2D" else (3, 0, 1, 2))
        w = torch.from_numpy(weight.copy())
        b = torch.zeros(w.shape[0]) if bias is None else torch.from_numpy(bias.copy())
        convs.append((w, b, int(op.options["stride"]), op.options["activation"] == "RELU6"))
    if not convs:
        raise UserError(f"{path} has no convolutions: not a MobileNetV2 TFLite file")
    weight, bias, _, _ = convs.pop()
    return {"convs": convs, "classifier": (weight.flatten(1), bias)}


def mobilenet_v2(
    num_classes: int | None = 1001, output_stride: int = 32, weights: str | Path | None = "imagenet"
) -> MobileNetV2:
    """MobileNetV2 1.0 with the shared ImageNet weights (see :class:`MobileNetV2`)."""
    return MobileNetV2(num_classes=num_classes, output_stride=output_stride, weights=weights)
