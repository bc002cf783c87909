"""White-box global correction: a thumbnail CNN estimates the six parameters of a bad photo's global edit
(exposure, white-balance temperature and tint, gamma, contrast, saturation: the degradation model of
:mod:`operators.photo_degradation`) and the photo is corrected by that model's exact inverse,
:func:`~operators.photo_degradation.restore_photo`. The idea of predicting the parameters of differentiable,
resolution-independent filters is Hu, He, Xu, Wang, Lin, "Exposure: A White-Box Photo Post-Processing
Framework", ACM TOG 2018; the filters here are ours (the inverse of our degradation).

Why: on the synthetic split the inverse with the true parameters reaches a median of 45.8 dB PSNR and a mean
ΔE00 of 1.6 (the rest is clipping), so a global transform is not what limits a learned model there: the
estimate is. Six numbers are easier to estimate than the weights of basis LUTs that must also learn the
transform family. The correction is global: :meth:`ParametricCorrection.global_transforms` bakes each
image's inverse into a 33³ 3D LUT for Pillow's 8-bit path, like :class:`~models.adaptive_lut.AdaptiveLUT`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.adaptive_lut import Lut3dTransform, ThumbnailCNN, identity_lut, thumbnail
from operators.photo_degradation import (
    PhotoDegradationParams,
    luma,
    restore_photo,
    temperature_tint_gains,
)

__all__ = ["ParametricCorrection"]

PARAMETERS = ("ev", "temperature", "tint", "log_gamma", "log_contrast", "log_saturation")


class ParametricCorrection(nn.Module):
    """``y = restore_photo(x, p̂(x), pivot = mean luma of x)``, (B, 3, H, W) → (B, 3, H, W), not clamped.

    The estimator is a :class:`~models.adaptive_lut.ThumbnailCNN` with six outputs ``r``, mapped into bounds:
    ``ev = max_ev · tanh(r_0)``, temperature and tint ``max_cast · tanh(r_1,2)`` (stops, see
    :func:`~operators.photo_degradation.temperature_tint_gains`), and gamma, contrast, saturation
    ``max_factor ^ tanh(r_3..5)``. The head starts at zero: every parameter at its identity value, so the
    model starts as the identity. The contrast pivot is the mean luma of the thumbnail (the whole image's, up
    to resizing), so a sample of pixels (``at``) is corrected exactly as the whole image would be.

    Args:
        thumb_size, widths, dropout, norm, histogram_bins, encoder, encoder_weights: the estimator,
            :class:`~models.adaptive_lut.ThumbnailCNN`.
        max_ev: bound of the exposure estimate in stops (the degradation's default range: ±1.5).
        max_cast: bound of the temperature and tint estimates in stops (defaults: ±0.6, ±0.25).
        max_factor: gamma, contrast and saturation lie in [1 / max_factor, max_factor] (defaults: 0.6-1.5).
        lut_size: nodes per axis of the 3D LUT :meth:`global_transforms` bakes.
    """

    def __init__(
        self,
        thumb_size: int = 128,
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        dropout: float = 0.5,
        norm: str = "instance",
        histogram_bins: int = 32,
        encoder: str = "mobilenet_v2",
        encoder_weights: str | None = "imagenet",
        max_ev: float = 3.0,
        max_cast: float = 1.0,
        max_factor: float = 2.0,
        lut_size: int = 33,
    ) -> None:
        super().__init__()
        if min(max_ev, max_cast) <= 0 or max_factor <= 1:
            raise ValueError(
                f"need max_ev, max_cast > 0 and max_factor > 1, got {max_ev}, {max_cast}, {max_factor}"
            )
        self.thumb_size, self.lut_size = thumb_size, lut_size
        self.estimator = ThumbnailCNN(
            len(PARAMETERS), thumb_size, widths, dropout, norm, histogram_bins, encoder, encoder_weights
        )
        nn.init.zeros_(self.estimator.head.weight)
        nn.init.zeros_(self.estimator.head.bias)
        scale = torch.tensor([max_ev, max_cast, max_cast, *[torch.tensor(max_factor).log().item()] * 3])
        self.register_buffer("scale", scale, persistent=False)

    def estimate(self, x: Tensor) -> tuple[PhotoDegradationParams, Tensor]:
        """The estimated degradation of each image and its contrast pivot: (B, 3, H, W) → (params, (B,))."""
        ev, temperature, tint, *log_factors = (torch.tanh(self.estimator(x)) * self.scale).unbind(1)
        gamma, contrast, saturation = (v.exp() for v in log_factors)
        params = PhotoDegradationParams(
            ev, temperature_tint_gains(temperature, tint), gamma, contrast, saturation
        )
        pivot = luma(thumbnail(x, self.thumb_size)).mean(dim=(1, 2, 3))
        return params, pivot

    def forward(self, x: Tensor, at: Tensor | None = None) -> Tensor:
        """``x`` (or ``at`` (B, 3, h, w), e.g. a sample of its pixels) corrected by the inverse estimated
        from ``x``."""
        params, pivot = self.estimate(x)
        return restore_photo(x if at is None else at, params, pivot)

    def global_transforms(self, x: Tensor) -> list[Lut3dTransform]:
        """Each image's correction as a 3D LUT (the inverse evaluated at the nodes), to apply at any
        resolution: (B, 3, H, W) (thumbnailed first) → B transforms."""
        params, pivot = self.estimate(thumbnail(x, self.thumb_size))
        b, d = x.shape[0], self.lut_size
        nodes = identity_lut(d, x.dtype, x.device).reshape(1, 3, d, d * d).expand(b, -1, -1, -1)
        luts = restore_photo(nodes, params, pivot).reshape(b, 3, d, d, d)
        return [Lut3dTransform(lut) for lut in luts]
