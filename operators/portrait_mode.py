"""What a portrait mask is for: a cut-out with alpha, the "portrait mode" photo (background blurred), and an
overlay that shows a prediction against its ground truth.

Images are RGB (B, 3, H, W) in [0, 1]; ``alpha`` is the person probability σ(t) (B, 1, H, W) in [0, 1] (a
soft alpha gives smoother edges than the thresholded mask).

Portrait mode composites ``α·I + (1 − α)·B`` where B is the background blurred *without* the person: a
normalised convolution ``B = G_σ * ((1 − α) I) / G_σ * (1 − α)`` (Knutsson & Westin, CVPR 1993), so the
person's colours do not bleed into a halo around them (a plain ``G_σ * I`` would smear the subject over the
background near its outline). The blur runs at a working resolution (long side ``work_size``) and is
upsampled back: it is smooth anyway, and a phone photo's σ of ~60 px would otherwise cost seconds.
"""

from __future__ import annotations

import math

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["blur_background", "cutout", "overlay"]

_EPS = 1e-4


def _check(image: Tensor, alpha: Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or alpha.shape != (image.shape[0], 1, *image.shape[-2:]):
        raise ValueError(
            f"expected an RGB image (B, 3, H, W) and an alpha (B, 1, H, W) of its size, got "
            f"{tuple(image.shape)} and {tuple(alpha.shape)}"
        )


def cutout(image: Tensor, alpha: Tensor) -> Tensor:
    """The person on a transparent background: RGBA (B, 4, H, W), alpha = the person probability."""
    _check(image, alpha)
    return torch.cat([image, alpha.to(image.dtype)], dim=1)


def blur_background(image: Tensor, alpha: Tensor, sigma: float = 0.015, work_size: int = 512) -> Tensor:
    """Portrait mode: ``α·I + (1 − α)·B``, B the person-free background blurred by a Gaussian.

    Args:
        image, alpha: RGB (B, 3, H, W) and the person probability (B, 1, H, W), both in [0, 1].
        sigma: the Gaussian's standard deviation as a fraction of the image's long side (0.015: 6 px at 400,
            60 px on a 4000-pixel phone photo).
        work_size: the long side at which the blur is computed (never above the image's own).
    """
    _check(image, alpha)
    if sigma <= 0 or work_size < 8:
        raise ValueError(f"need sigma > 0 and work_size >= 8, got {sigma} and {work_size}")
    height, width = image.shape[-2:]
    scale = min(1.0, work_size / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
    weight = 1.0 - F.interpolate(alpha, size=size, mode="bilinear", antialias=True, align_corners=False)
    s = max(sigma * max(size), 0.5)
    kernel = 2 * math.ceil(3 * s) + 1
    blur = lambda x: kornia.filters.gaussian_blur2d(x, (kernel, kernel), (s, s), border_type="reflect")  # noqa: E731
    weight_blurred, weighted_blurred = blur(torch.cat([weight, small * weight], dim=1)).split([1, 3], dim=1)
    background = weighted_blurred / weight_blurred.clamp(min=_EPS)
    reached = weight_blurred > _EPS
    if not reached.all():  # deep inside a large subject no background is within reach: the plain blur there
        background = torch.where(reached, background, blur(small))
    background = background.clamp(0, 1)
    background = F.interpolate(background, size=(height, width), mode="bilinear", align_corners=False)
    return alpha * image + (1.0 - alpha) * background


def overlay(image: Tensor, probs: Tensor, target: Tensor | None = None, threshold: float = 0.5) -> Tensor:
    """The prediction over its image: the background (p̃ < threshold) dimmed to 35 %; against a ground truth
    the errors are tinted, false positives red and false negatives blue. RGB (B, 3, H, W)."""
    _check(image, probs)
    person = (probs >= threshold).to(image.dtype)
    out = image * (0.35 + 0.65 * person)
    if target is not None:
        truth = (target.reshape_as(probs) >= 0.5).to(image.dtype)
        red = torch.tensor([1.0, 0.1, 0.1], device=image.device).view(1, 3, 1, 1)
        blue = torch.tensor([0.1, 0.3, 1.0], device=image.device).view(1, 3, 1, 1)
        false_pos, false_neg = person * (1 - truth), (1 - person) * truth
        out = out * (1 - 0.6 * false_pos) + 0.6 * false_pos * red
        out = out * (1 - 0.6 * false_neg) + 0.6 * false_neg * blue
    return out.clamp(0, 1)
