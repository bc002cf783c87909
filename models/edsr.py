"""A residual super-resolution network after EDSR (Lim et al., "Enhanced Deep Residual Networks for Single
Image Super-Resolution", CVPRW 2017), ending in ESPCN's single sub-pixel convolution.

EDSR's body: a 3×3 head conv, ``num_blocks`` residual blocks without batch norm
(``x + res_scale · conv(relu(conv(x)))``), a 3×3 conv, and a global skip from the head. EDSR's ×4 tail is two
×2 sub-pixel stages at 2× and 4× resolution; here one conv to C·r² channels at LR resolution and
``PixelShuffle(r)`` (Shi et al., CVPR 2016), so all the work stays on the LR grid as in ESPCN. Inputs are
centred (x − 0.5) in place of EDSR's data-set RGB mean, and the output is linear (clamp it to [0, 1] to view).
The published EDSR-baseline is ``channels=64, num_blocks=16`` (1.5 M parameters with its two-stage tail).
"""

from __future__ import annotations

from torch import Tensor, nn

from models.espcn import check_upscale_factor

__all__ = ["EDSR", "ResidualBlock"]


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResidualBlock(nn.Module):
    """EDSR's block: ``x + res_scale · conv3x3(relu(conv3x3(x)))``, no batch norm."""

    def __init__(self, channels: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels)
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.body(x)


class EDSR(nn.Module):
    """(B, C, h, w) in [0, 1] → (B, C, r·h, r·w).

    Args:
        upscale_factor: r ∈ {2, 3, 4}.
        in_channels: C, channels in and out (3: RGB).
        channels: width of every hidden conv.
        num_blocks: residual blocks.
        res_scale: scale of each block's residual branch (EDSR uses 0.1 for its widest model, 1 otherwise).
    """

    def __init__(
        self,
        upscale_factor: int = 4,
        in_channels: int = 3,
        channels: int = 64,
        num_blocks: int = 16,
        res_scale: float = 1.0,
    ) -> None:
        super().__init__()
        check_upscale_factor(upscale_factor)
        if in_channels < 1 or channels < 1 or num_blocks < 0:
            raise ValueError(
                f"need in_channels, channels >= 1 and num_blocks >= 0, got {in_channels}, {channels}, "
                f"{num_blocks}"
            )
        self.upscale_factor = upscale_factor
        self.in_channels = in_channels
        self.head = conv3x3(in_channels, channels)
        self.body = nn.Sequential(
            *(ResidualBlock(channels, res_scale) for _ in range(num_blocks)), conv3x3(channels, channels)
        )
        self.tail = nn.Sequential(
            conv3x3(channels, in_channels * upscale_factor**2), nn.PixelShuffle(upscale_factor)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"EDSR expects (B, {self.in_channels}, h, w), got shape {tuple(x.shape)}")
        features = self.head(x - 0.5)
        return self.tail(features + self.body(features)) + 0.5
