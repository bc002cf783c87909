"""JPEG deblocking before super-resolution.

:class:`ARCNNDeblock` is a small residual variant of AR-CNN (Dong et al., ICCV 2015, "Compression Artifacts
Reduction by a Deep Convolutional Network"): feature extraction 9×9 → feature enhancement 7×7 → mapping 1×1 →
reconstruction 5×5, ReLU between layers. Unlike the paper it predicts the residual, ``x̂ = clamp(x + f(x))``,
with the last layer zero-initialised so the untrained network is the identity.
"""

from __future__ import annotations

from torch import Tensor, nn

from models.espcn import check_conv_stack

__all__ = ["ARCNNDeblock", "DeblockThenSR"]


class ARCNNDeblock(nn.Module):
    """Residual AR-CNN: (B, C, H, W) in [0, 1] → (B, C, H, W), ``clamp(x + f(x), 0, 1)``.

    Args:
        channels: C, image channels (3 for RGB).
        features: widths of the hidden layers (the paper: 64, 32, 16).
        kernel_sizes: odd kernel sizes, one more than ``features`` (the paper: 9, 7, 1, 5); "same" padding.
    """

    def __init__(
        self,
        channels: int = 3,
        features: tuple[int, ...] = (64, 32, 16),
        kernel_sizes: tuple[int, ...] = (9, 7, 1, 5),
    ) -> None:
        super().__init__()
        features, kernel_sizes = tuple(features), tuple(kernel_sizes)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        check_conv_stack(features, kernel_sizes)
        self.channels = channels
        widths = (channels, *features, channels)
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2))
            if i < len(features):
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        last = self.body[-1]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        return (x + self.body(x)).clamp(0.0, 1.0)


class DeblockThenSR(nn.Module):
    """``sr(deblock(x))``: remove JPEG artefacts at LR, then super-resolve; ``upscale_factor`` is sr's."""

    def __init__(self, deblock: nn.Module, sr: nn.Module) -> None:
        super().__init__()
        self.deblock = deblock
        self.sr = sr
        self.upscale_factor: int | None = getattr(sr, "upscale_factor", None)

    def forward(self, x: Tensor) -> Tensor:
        return self.sr(self.deblock(x))
