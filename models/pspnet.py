"""PSPNet (Zhao, Shi, Qi, Wang & Jia, "Pyramid Scene Parsing Network", CVPR 2017) for binary segmentation.

A dilated backbone (output stride 8 or 16) gives a feature map F; the pyramid pooling module average-pools F
to 1×1, 2×2, 3×3 and 6×6 bins, reduces each to C/4 channels (1×1 conv → BN → ReLU), upsamples them back
(bilinear) and concatenates them with F (paper, Fig. 3 and Sec. 3.2); a 3×3 conv → BN → ReLU → dropout(0.1) →
1×1 conv gives **one logit per pixel** (the lecture's per-pixel sigmoid output), upsampled bilinearly to the
input size. The auxiliary head (paper, Sec. 3.3: "deep supervision", loss weight 0.4) is the same small head
on the stage before the last (ResNet's layer3, MobileNetV2's 96-channel stage).

Output convention: in **training mode** a network with an auxiliary head returns ``(logits, aux_logits)``,
both (B, 1, H, W); in **eval mode** (validation, test, predict, ONNX export) it returns ``logits`` only. The
auxiliary weight is applied by the loss (``losses.segmentation.SegmentationLoss(aux_weight=0.4)``, which takes
either form). The pooled 1×1 branch has batch norm on a single value per channel and image, so training needs
batches of at least 2 images (as the paper's).

Backbones: MobileNetV2 1.0 with the shared ImageNet TFLite weights (:mod:`models.mobilenet_v2`), and
torchvision's ResNet-18/34/50 with ImageNet weights from the torch hub cache or a path (from scratch
otherwise, with one warning). Inputs are RGB (B, 3, H, W) in [0, 1], any size.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from framework.errors import UserError
from models.mobilenet_v2 import MobileNetV2

__all__ = [
    "BACKBONES",
    "PSPNet",
    "PyramidPooling",
    "ResNetBackbone",
    "adaptive_avg_pool",
    "pspnet",
    "pspnet_mobilenet_v2",
    "pspnet_resnet18",
    "pspnet_resnet34",
    "pspnet_resnet50",
]

BACKBONES: tuple[str, ...] = ("mobilenet_v2", "resnet18", "resnet34", "resnet50")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_warned_scratch: set[str] = set()


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def adaptive_avg_pool_matrix(size: int, bins: int, like: Tensor) -> Tensor:
    """(bins, size) averaging matrix of PyTorch's adaptive average pooling along one axis: row i averages
    the pixels ``floor(i·size/bins) … ceil((i+1)·size/bins) − 1`` (overlapping when size < bins)."""
    i = torch.arange(bins, device=like.device)
    start = (i * size) // bins
    end = ((i + 1) * size + bins - 1) // bins
    j = torch.arange(size, device=like.device)
    weights = ((j >= start[:, None]) & (j < end[:, None])).to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def adaptive_avg_pool(x: Tensor, bins: int) -> Tensor:
    """``F.adaptive_avg_pool2d(x, bins)`` as two matrix products (same values).

    Why not the library op: its ONNX export (torch's dynamo exporter) hard-codes the bin indices of the
    example size, so an exported PSPNet with dynamic height / width reads out of range at other sizes, and
    the TorchScript exporter rejects bins that do not divide the map. The matrices are built from the
    input's size, so they follow any size.
    """
    rows = adaptive_avg_pool_matrix(x.shape[-2], bins, x)
    cols = adaptive_avg_pool_matrix(x.shape[-1], bins, x)
    return rows @ x @ cols.transpose(0, 1)


class PyramidPooling(nn.Module):
    """Pyramid pooling module: ``[F, up(branch_b(pool_b(F))) for b in bins]`` concatenated on channels.

    Each branch is adaptive average pooling to b×b (:func:`adaptive_avg_pool`) → 1×1 conv to
    ``branch_channels`` → BN → ReLU, then bilinear upsampling to F's size. Adaptive pooling also handles maps
    smaller than a bin (overlapping bins). Output channels: ``in_channels + len(bins) · branch_channels``.
    """

    def __init__(
        self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6), branch_channels: int | None = None
    ):
        super().__init__()
        if not bins or min(bins) < 1:
            raise ValueError(f"bins must be positive integers, got {tuple(bins)}")
        branch_channels = branch_channels or max(in_channels // len(bins), 1)
        self.bins = tuple(int(b) for b in bins)
        self.branches = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(in_channels, branch_channels, 1)) for _ in self.bins
        )
        self.out_channels = in_channels + len(self.bins) * branch_channels

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(branch(adaptive_avg_pool(x, b)), size=size, mode="bilinear", align_corners=False)
            for b, branch in zip(self.bins, self.branches, strict=True)
        ]
        return torch.cat([x, *pooled], dim=1)


def _head(in_channels: int, mid_channels: int, dropout: float, num_classes: int) -> nn.Sequential:
    """3×3 conv → BN → ReLU → dropout → 1×1 conv to ``num_classes`` logits."""
    return nn.Sequential(
        *_conv_bn_relu(in_channels, mid_channels, 3),
        nn.Dropout2d(dropout),
        nn.Conv2d(mid_channels, num_classes, 1),
    )


class PSPNet(nn.Module):
    """RGB (B, 3, H, W) in [0, 1] → logits (B, num_classes, H, W) (and auxiliary logits in training mode).

    Args:
        backbone: a module with ``forward_features(x) -> {"out": …, "aux": …}`` and ``feature_channels``
            (``{"out": C, "aux": C_aux}``): :class:`~models.mobilenet_v2.MobileNetV2` (``num_classes=None``)
            or :class:`ResNetBackbone`.
        bins: pyramid pooling bin sizes (the paper's 1, 2, 3, 6).
        head_channels: channels of the 3×3 conv after the pyramid (the paper's 512).
        dropout: dropout before the classifier conv (the paper's 0.1).
        aux_channels: channels of the auxiliary head's 3×3 conv; 0 for no auxiliary head.
        num_classes: logits per pixel (1: the binary portrait mask).
    """

    def __init__(
        self,
        backbone: nn.Module,
        bins: Sequence[int] = (1, 2, 3, 6),
        head_channels: int = 512,
        dropout: float = 0.1,
        aux_channels: int = 256,
        num_classes: int = 1,
    ) -> None:
        super().__init__()
        channels = getattr(backbone, "feature_channels", None)
        if not hasattr(backbone, "forward_features") or not channels or "out" not in channels:
            raise ValueError("backbone needs forward_features(x) -> {'out', 'aux'} and feature_channels")
        if head_channels < 1 or aux_channels < 0 or num_classes < 1 or not 0 <= dropout < 1:
            raise ValueError(
                f"need head_channels >= 1, aux_channels >= 0, num_classes >= 1 and dropout in [0, 1), got "
                f"{head_channels}, {aux_channels}, {num_classes}, {dropout}"
            )
        self.backbone = backbone
        self.ppm = PyramidPooling(channels["out"], bins)
        self.head = _head(self.ppm.out_channels, head_channels, dropout, num_classes)
        self.aux_head = _head(channels["aux"], aux_channels, dropout, num_classes) if aux_channels else None

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        size = x.shape[-2:]
        features = self.backbone.forward_features(x)
        logits = F.interpolate(
            self.head(self.ppm(features["out"])), size=size, mode="bilinear", align_corners=False
        )
        if self.training and self.aux_head is not None:
            aux = self.aux_head(features["aux"])
            return logits, F.interpolate(aux, size=size, mode="bilinear", align_corners=False)
        return logits


def _hub_file(depth: int) -> Path | None:
    """torchvision's ImageNet ResNet state dict in the torch hub cache, if one was downloaded before."""
    enum = getattr(torchvision.models, f"ResNet{depth}_Weights")
    for entry in enum:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name
        if path.is_file():
            return path
    return None


def _dilate_basic_layer(layer: nn.Sequential, previous: int, dilation: int) -> None:
    """Stride 2 → 1 in a layer of BasicBlocks, as ``replace_stride_with_dilation`` does for Bottlenecks
    (torchvision's BasicBlock refuses dilation): the conv that had the stride keeps the previous rate, every
    later 3×3 conv gets ``dilation``."""
    for index, block in enumerate(layer):
        for conv in (block.conv1, block.conv2):
            rate = previous if (index == 0 and conv is block.conv1) else dilation
            conv.stride, conv.dilation, conv.padding = (1, 1), (rate, rate), (rate, rate)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)


class ResNetBackbone(nn.Module):
    """torchvision ResNet as a dilated feature extractor: RGB in [0, 1] → ``{"low": layer1, "aux": layer3,
    "out": layer4}`` at strides 4, min(s, 16) and s = ``output_stride`` (8 or 16).

    Args:
        depth: 18, 34 or 50.
        output_stride: 8 (layer3 and layer4 dilated by 2 and 4, as PSPNet) or 16 (layer4 by 2).
        weights: ``"imagenet"`` for torchvision's ImageNet weights from the torch hub cache (missing → one
            warning, trained from scratch), a path to a saved ``torchvision.models.resnetXX().state_dict()``
            (missing → UserError), or ``None`` for random weights (no warning).
        allow_download: let ``weights="imagenet"`` download into the hub cache when it is not there.
    """

    def __init__(
        self,
        depth: int = 50,
        output_stride: int = 8,
        weights: str | Path | None = "imagenet",
        allow_download: bool = False,
    ) -> None:
        super().__init__()
        if depth not in (18, 34, 50):
            raise ValueError(f"depth must be 18, 34 or 50, got {depth}")
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        self.output_stride = output_stride
        dilate = [False, output_stride == 8, True]
        build = getattr(torchvision.models, f"resnet{depth}")
        net = build(weights=None, replace_stride_with_dilation=dilate) if depth == 50 else build(weights=None)
        if depth != 50:
            if output_stride == 8:
                _dilate_basic_layer(net.layer3, previous=1, dilation=2)
            _dilate_basic_layer(
                net.layer4, previous=2 if output_stride == 8 else 1, dilation=4 if output_stride == 8 else 2
            )
        state = _resnet_state(depth, weights, allow_download)
        if state is not None:
            _load_resnet_state(net, state, depth)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if depth == 50 else 1
        self.feature_channels = {"low": 64 * expansion, "aux": 256 * expansion, "out": 512 * expansion}
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"ResNetBackbone expects RGB (B, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        low = self.layer1(self.stem((x - self.mean) / self.std))
        aux = self.layer3(self.layer2(low))
        return {"low": low, "aux": aux, "out": self.layer4(aux)}


def _load_resnet_state(net: nn.Module, state: dict[str, Tensor], depth: int) -> None:
    """Every weight but the classifier (``fc``), or a UserError naming what does not fit."""
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise UserError(
            f"weights do not fit torchvision resnet{depth}: {str(err).splitlines()[1:2]}"
        ) from err
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise UserError(
            f"weights are not a torchvision resnet{depth} state dict: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}"
        )


def _resnet_state(depth: int, weights: str | Path | None, allow_download: bool) -> dict[str, Tensor] | None:
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        path = _hub_file(depth)
        if path is not None:
            return torch.load(path, map_location="cpu", weights_only=True)
        if allow_download:
            enum = getattr(torchvision.models, f"ResNet{depth}_Weights")
            return enum.IMAGENET1K_V1.get_state_dict(progress=False)
        if f"resnet{depth}" not in _warned_scratch:
            _warned_scratch.add(f"resnet{depth}")
            name = Path(getattr(torchvision.models, f"ResNet{depth}_Weights").IMAGENET1K_V1.url).name
            warnings.warn(
                f"ResNet-{depth} is trained FROM SCRATCH: no ImageNet weights ({name} is not in "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'}). Put it there or pass weights=<path>.",
                UserWarning,
                stacklevel=4,
            )
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserError(
            f"ResNet weights file {path} does not exist: give a torchvision resnet{depth} state dict"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def pspnet(
    backbone: str = "mobilenet_v2",
    output_stride: int = 8,
    backbone_weights: str | Path | None = "imagenet",
    bins: Sequence[int] = (1, 2, 3, 6),
    head_channels: int | None = None,
    aux_channels: int | None = None,
    dropout: float = 0.1,
    num_classes: int = 1,
) -> PSPNet:
    """PSPNet on a named backbone (one of :data:`BACKBONES`).

    ``head_channels`` / ``aux_channels`` default to the paper's 512 / 256 for ResNets and to 128 / 64 for
    MobileNetV2 (its 320-channel output is 8× narrower than ResNet-50's); ``aux_channels=0`` drops the
    auxiliary head.
    """
    if backbone not in BACKBONES:
        raise UserError(f"model.backbone={backbone} is not known: choose one of {', '.join(BACKBONES)}")
    if backbone == "mobilenet_v2":
        net: nn.Module = MobileNetV2(num_classes=None, output_stride=output_stride, weights=backbone_weights)
        default_head, default_aux = 128, 64
    else:
        net = ResNetBackbone(int(backbone.removeprefix("resnet")), output_stride, backbone_weights)
        default_head, default_aux = 512, 256
    return PSPNet(
        net,
        bins=bins,
        head_channels=default_head if head_channels is None else head_channels,
        aux_channels=default_aux if aux_channels is None else aux_channels,
        dropout=dropout,
        num_classes=num_classes,
    )


def pspnet_mobilenet_v2(
    output_stride: int = 8, weights: str | Path | None = "imagenet", **kwargs: Any
) -> PSPNet:
    """PSPNet on MobileNetV2 1.0 with the shared ImageNet TFLite weights (the light backbone)."""
    return pspnet("mobilenet_v2", output_stride, weights, **kwargs)


def pspnet_resnet18(output_stride: int = 8, weights: str | Path | None = "imagenet", **kwargs: Any) -> PSPNet:
    """PSPNet on a dilated ResNet-18 (ImageNet weights from the torch hub cache or a path)."""
    return pspnet("resnet18", output_stride, weights, **kwargs)


def pspnet_resnet34(output_stride: int = 8, weights: str | Path | None = "imagenet", **kwargs: Any) -> PSPNet:
    """PSPNet on a dilated ResNet-34 (ImageNet weights from the torch hub cache or a path)."""
    return pspnet("resnet34", output_stride, weights, **kwargs)


def pspnet_resnet50(output_stride: int = 8, weights: str | Path | None = "imagenet", **kwargs: Any) -> PSPNet:
    """PSPNet-ResNet50 as in the paper's ablations (without its deep stem)."""
    return pspnet("resnet50", output_stride, weights, **kwargs)
