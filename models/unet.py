"""A small U-Net (Ronneberger, Fischer & Brox, "U-Net", MICCAI 2015) baseline for binary segmentation.

Encoder: ``depth`` levels of (3×3 conv → BN → ReLU) ×2 with 2×2 max pooling between them, channels doubling
from ``base_channels``; decoder: bilinear ×2 upsampling, concatenation with the encoder map of the same
size, (3×3 conv → BN → ReLU) ×2; a 1×1 conv gives one logit per pixel. Batch norm and bilinear upsampling
(instead of the paper's unpadded convs and up-convolutions) keep the output the input's size. The default
(16 base channels, depth 4) has 1.9 M parameters and trains on a CPU.

Any input size: the input is padded (edge replication) up to a multiple of ``2**depth`` and the logits are
cropped back. Input RGB (B, 3, H, W) in [0, 1]; output logits (B, num_classes, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UNet", "unet_small"]


class DoubleConv(nn.Sequential):
    """(3×3 conv → BN → ReLU) ×2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """RGB (B, C, H, W) in [0, 1] → logits (B, num_classes, H, W), any H, W.

    Args:
        in_channels: input channels (3: RGB).
        num_classes: logits per pixel (1: the binary mask).
        base_channels: channels of the first level; level i has ``base_channels · 2^i``.
        depth: number of 2× poolings (the input is padded to a multiple of ``2**depth``).
    """

    def __init__(
        self, in_channels: int = 3, num_classes: int = 1, base_channels: int = 16, depth: int = 4
    ) -> None:
        super().__init__()
        if min(in_channels, num_classes, base_channels, depth) < 1:
            raise ValueError(
                "in_channels, num_classes, base_channels and depth must be >= 1, got "
                f"{in_channels}, {num_classes}, {base_channels}, {depth}"
            )
        self.in_channels, self.depth = in_channels, depth
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList(
            [DoubleConv(in_channels, widths[0])]
            + [DoubleConv(widths[i], widths[i + 1]) for i in range(depth)]
        )
        self.decoders = nn.ModuleList(
            DoubleConv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        multiple = 2**self.depth
        # always padded (often by 0) and no negative operands: no branch on the size and nothing that ONNX's
        # integer arithmetic rounds differently, so an export with dynamic sizes stays exact
        pad_h, pad_w = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
        x = F.pad(x * 2.0 - 1.0, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()  # the bottleneck itself
        for decoder in self.decoders:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :h, :w]


def unet_small(num_classes: int = 1, base_channels: int = 16, depth: int = 4) -> UNet:
    """The baseline: 16 base channels, 4 poolings, 1.9 M parameters."""
    return UNet(3, num_classes, base_channels, depth)
