"""ESPCN (Shi et al., CVPR 2016, "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network") and the bicubic baseline.

Every SR network here maps RGB (B, 3, h, w) in [0, 1] to RGB (B, 3, r·h, r·w) and exposes ``upscale_factor``.

ESPCN works at LR resolution and ends with a sub-pixel convolution: the last conv outputs C·r² channels and
``PixelShuffle(r)`` rearranges (B, C·r², h, w) → (B, C, r·h, r·w):
``out[b, c, r·y + i, r·x + j] = feat[b, c·r² + r·i + j, y, x]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from operators.degradation import bicubic_upscale, rgb_to_ycbcr, ycbcr_to_rgb

__all__ = ["ESPCN", "BicubicUpsampler", "YChannelSR", "espcn", "espcn_paper"]

UPSCALE_FACTORS = (2, 3, 4)
ACTIVATIONS = ("leaky_relu", "tanh", "relu")
OUTPUT_ACTIVATIONS = ("sigmoid", "identity")


def check_upscale_factor(upscale_factor: int) -> None:
    if upscale_factor not in UPSCALE_FACTORS or isinstance(upscale_factor, bool):
        raise ValueError(f"upscale_factor must be one of {UPSCALE_FACTORS}, got {upscale_factor!r}")


def check_conv_stack(features: tuple[int, ...], kernel_sizes: tuple[int, ...]) -> None:
    """A plain conv stack: positive hidden widths and one odd kernel size per conv (len(features) + 1)."""
    if not features or any(f < 1 for f in features):
        raise ValueError(f"features must be a non-empty tuple of positive widths, got {features}")
    if len(kernel_sizes) != len(features) + 1:
        raise ValueError(
            f"kernel_sizes needs len(features) + 1 = {len(features) + 1} entries (one per conv), "
            f"got {kernel_sizes}"
        )
    if any(k < 1 or k % 2 == 0 for k in kernel_sizes):
        raise ValueError(f"kernel_sizes must be odd positive ints, got {kernel_sizes}")


def _activation(name: str) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "tanh":
        return nn.Tanh()
    if name == "relu":
        return nn.ReLU(inplace=True)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class ESPCN(nn.Module):
    """Efficient sub-pixel CNN: conv(k0) → act → conv(k1) → act → … → conv(kL, C·r²) → out act → shuffle(r).

    Args:
        upscale_factor: r ∈ {2, 3, 4}.
        in_channels: C, channels in and out (3 for RGB, 1 for the paper's Y-channel net).
        features: widths of the hidden layers (the paper: (64, 32)).
        kernel_sizes: odd kernel sizes, one more than ``features`` (the paper: (5, 3, 3)). Zero "same"
            padding, so (B, C, h, w) → (B, C, r·h, r·w) for any h, w.
        activation: hidden activation, "leaky_relu" (slope 0.2), "tanh" (the paper) or "relu".
        output_activation: "sigmoid" (output in (0, 1)) or "identity" (linear, as the paper).

    The paper trains the last layer with a 10× smaller learning rate; that is an optimizer choice (parameter
    groups on ``self.body[-1]``), not part of the module.
    """

    def __init__(
        self,
        upscale_factor: int = 3,
        in_channels: int = 3,
        features: tuple[int, ...] = (64, 64),
        kernel_sizes: tuple[int, ...] = (5, 5, 5),
        activation: str = "leaky_relu",
        output_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        check_upscale_factor(upscale_factor)
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        features, kernel_sizes = tuple(features), tuple(kernel_sizes)
        check_conv_stack(features, kernel_sizes)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        self.upscale_factor = upscale_factor
        self.in_channels = in_channels

        widths = (in_channels, *features, in_channels * upscale_factor**2)
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2))
            if i < len(features):
                layers.append(_activation(activation))
        self.body = nn.Sequential(*layers)
        self.output_activation = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()
        self.shuffle = nn.PixelShuffle(upscale_factor)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ESPCN expects (B, {self.in_channels}, h, w), got shape {tuple(x.shape)}")
        return self.shuffle(self.output_activation(self.body(x)))


class YChannelSR(nn.Module):
    """Run a 1-channel SR net on luma only: RGB → YCbCr (BT.601, Matlab ``rgb2ycbcr``), ``net`` on Y,
    bicubic (Keys a = -0.5) upscaling of Cb/Cr, back to RGB, clamp to [0, 1]. (B, 3, h, w) → (B, 3, r·h, r·w).

    ``upscale_factor`` defaults to ``net.upscale_factor``.
    """

    def __init__(self, net: nn.Module, upscale_factor: int | None = None) -> None:
        super().__init__()
        if upscale_factor is None:
            upscale_factor = getattr(net, "upscale_factor", None)
            if upscale_factor is None:
                raise ValueError("YChannelSR needs upscale_factor (the wrapped net has no .upscale_factor)")
        check_upscale_factor(upscale_factor)
        self.net = net
        self.upscale_factor = upscale_factor

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"YChannelSR expects RGB (B, 3, h, w), got shape {tuple(x.shape)}")
        ycbcr = rgb_to_ycbcr(x)
        y = self.net(ycbcr[:, :1])
        cbcr = bicubic_upscale(ycbcr[:, 1:], self.upscale_factor)
        if y.shape[-2:] != cbcr.shape[-2:] or y.shape[1] != 1:
            raise ValueError(
                f"wrapped net returned {tuple(y.shape)}, expected (B, 1, {tuple(cbcr.shape[-2:])})"
            )
        return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1)).clamp(0.0, 1.0)


class BicubicUpsampler(nn.Module):
    """Bicubic upscaling, clamped to [0, 1]: the no-training baseline. (B, C, h, w) → (B, C, r·h, r·w).

    ``antialias=True`` selects torch's Keys ``a = -0.5`` kernel (Matlab ``imresize``), which reproduces the
    published bicubic rows (Set5 ×3: 30.39 dB Y-PSNR); ``False`` is torch's default ``a = -0.75``.
    No parameters.
    """

    def __init__(self, upscale_factor: int, antialias: bool = True) -> None:
        super().__init__()
        check_upscale_factor(upscale_factor)
        self.upscale_factor = upscale_factor
        self.antialias = antialias

    def forward(self, x: Tensor) -> Tensor:
        return bicubic_upscale(x, self.upscale_factor, antialias=self.antialias)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}, antialias={self.antialias}"


def espcn(upscale_factor: int = 3) -> ESPCN:
    """The course slide's RGB ESPCN: kernels 5-5-5, widths 64-64, LeakyReLU(0.2), sigmoid output."""
    return ESPCN(upscale_factor, 3, (64, 64), (5, 5, 5), "leaky_relu", "sigmoid")


def espcn_paper(upscale_factor: int = 3) -> YChannelSR:
    """The paper's ESPCN (Shi et al. 2016, §3.1): Y channel, kernels 5-3-3, widths 64-32, tanh, linear output,
    wrapped in :class:`YChannelSR` so it maps RGB → RGB."""
    return YChannelSR(ESPCN(upscale_factor, 1, (64, 32), (5, 3, 3), "tanh", "identity"))
