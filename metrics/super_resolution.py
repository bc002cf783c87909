"""Super-resolution metrics with the BasicSR / Matlab conventions used in published tables.

BasicSR's ``calculate_psnr(img, img2, crop_border, test_y_channel=True)`` and ``calculate_ssim``: both images
are 8-bit (``tensor2img`` rounds), ``crop_border`` pixels (usually the scale) are removed on each side, and
the metric is computed on the BT.601 luma Y of Matlab's ``rgb2ycbcr`` in the 0..255 range (Y itself is not
re-rounded). SSIM (Wang et al., IEEE TIP 2004) uses an 11×11 Gaussian window with σ = 1.5, "valid" filtering,
C1 = (0.01·255)², C2 = (0.03·255)², and the mean of the SSIM map (the shared core :mod:`metrics.ssim`).

All functions take (B, C, H, W) (or (C, H, W)) tensors in [0, 1] and return one value per sample, shape (B,),
in float64. A 1-channel input is taken as luma already (as BasicSR does for grayscale images).
"""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.ssim import ssim
from operators.degradation import quantize_8bit, rgb_to_ycbcr

__all__ = ["psnr_rgb", "psnr_y", "quantize_8bit", "rgb_to_y", "sr_metrics", "ssim_y"]


def rgb_to_y(x: Tensor) -> Tensor:
    """BT.601 luma of Matlab ``rgb2ycbcr``: RGB (B, 3, H, W) in [0, 1] → Y (B, 1, H, W) in [16/255, 235/255].

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``.
    """
    return rgb_to_ycbcr(x)[..., :1, :, :]


def _prepare(pred: Tensor, target: Tensor, crop_border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    """Batch, check, quantise to 8 bit, convert to Y (if asked), scale to 0..255 float64, crop borders."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if pred.ndim == 3:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W), got shape {tuple(pred.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    h, w = pred.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")
    out = []
    for img in (pred, target):
        img = quantize_8bit(img.detach().to(torch.float64))
        if y_channel and img.shape[1] == 3:
            img = rgb_to_y(img)
        elif y_channel and img.shape[1] != 1:
            raise ValueError(f"Y-channel metrics need 1 or 3 channels, got {img.shape[1]}")
        out.append(img[..., crop_border : h - crop_border, crop_border : w - crop_border] * 255.0)
    return out[0], out[1]


def _psnr_255(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR = 10·log10(255² / MSE) per sample, data in 0..255; inf where the images are equal."""
    mse = (pred - target).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(255.0**2 / mse)  # mse = 0 gives +inf, as BasicSR


def psnr_y(pred: Tensor, target: Tensor, crop_border: int) -> Tensor:
    """Y-channel PSNR (dB), BasicSR ``calculate_psnr(..., test_y_channel=True)``: (B, 3, H, W) ×2 → (B,).

    Both images are rounded to 8 bit, converted to Y (0..255), and ``crop_border`` pixels are cut per side.
    """
    return _psnr_255(*_prepare(pred, target, crop_border, y_channel=True))


def psnr_rgb(pred: Tensor, target: Tensor, crop_border: int) -> Tensor:
    """PSNR (dB) over all channels of the 8-bit images after the border crop: (B, C, H, W) ×2 → (B,)."""
    return _psnr_255(*_prepare(pred, target, crop_border, y_channel=False))


def ssim_y(pred: Tensor, target: Tensor, crop_border: int) -> Tensor:
    """Y-channel SSIM, BasicSR ``calculate_ssim(..., test_y_channel=True)``: (B, 3, H, W) ×2 → (B,).

    ``SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))`` (Wang et al. 2004), local moments
    from an 11×11 Gaussian window (σ = 1.5) over the valid region, averaged over the map; computed by the
    shared core :func:`metrics.ssim.ssim` on the 8-bit Y values with data range 255.
    """
    return ssim(*_prepare(pred, target, crop_border, y_channel=True), data_range=255.0, border="valid")


def sr_metrics(pred: Tensor, target: Tensor, crop_border: int) -> dict[str, Tensor]:
    """All SR metrics per sample: ``{"psnr_y", "ssim_y", "psnr_rgb"}``, each (B,) float64."""
    return {
        "psnr_y": psnr_y(pred, target, crop_border),
        "ssim_y": ssim_y(pred, target, crop_border),
        "psnr_rgb": psnr_rgb(pred, target, crop_border),
    }
