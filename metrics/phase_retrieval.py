"""Per-sample, 180-degree-rotation-invariant image metrics for Fourier phase retrieval.

Every metric is computed for both orientations of the prediction (``pred`` and ``rot180(pred)``) and the
better value is kept *per sample and per metric* (min for errors, max for PSNR/SSIM), since ``|F x|`` cannot
distinguish them (Dekel & Gugel, ICFSP 2022). ``pred`` is clamped to [0, 1] before all metrics; ``target`` is
used as is (expected in [0, 1]).

* ``mse``, ``mae``: mean over C, H, W.
* ``psnr``: ``10 * log10(1 / mse)`` (data range 1); mse is floored at 1e-10, so PSNR <= 100 dB stays finite.
* ``ssim``: torchmetrics ``structural_similarity_index_measure``'s convention (Gaussian window 11, sigma 1.5,
  k1=0.01, k2=0.03, data range 1, the mean of the map of the reflect-padded images), one value per image
  (over channels too if C > 1); computed by the shared core :func:`metrics.ssim.ssim` (``border="reflect"``).
* ``ssim_dr2``: the same with ``data_range=2`` on the same [0, 1] images (larger constants C1, C2, so higher
  values); the convention the published PR tables appear to use. Report which one you quote.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.ssim import ssim as ssim_core
from operators.fourier import rot180

__all__ = ["METRIC_NAMES", "MSE_FLOOR", "SSIM_WINDOW", "psnr_from_mse", "rot180_invariant_metrics", "ssim"]

SSIM_WINDOW = "gaussian 11, sigma 1.5"
METRIC_NAMES: tuple[str, ...] = ("mse", "mae", "psnr", "ssim", "ssim_dr2")
MSE_FLOOR = 1e-10


def psnr_from_mse(mse: Tensor, data_range: float = 1.0) -> Tensor:
    """``10 * log10(data_range**2 / max(mse, 1e-10))``."""
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(MSE_FLOOR))


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image SSIM (B,) of (B, C, H, W) inputs, Gaussian window 11, sigma 1.5 (Wang et al., TIP 2004),
    reflect-padded borders (torchmetrics' convention)."""
    return ssim_core(pred, target, data_range, window="gaussian", kernel_size=11, sigma=1.5, border="reflect")


def _orientation_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    diff = (pred - target).flatten(1)
    mse = diff.square().mean(dim=1)
    return {
        "mse": mse,
        "mae": diff.abs().mean(dim=1),
        "psnr": psnr_from_mse(mse),
        "ssim": ssim(pred, target, data_range=1.0),
        "ssim_dr2": ssim(pred, target, data_range=2.0),
    }


def rot180_invariant_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """180-degree-invariant ``mse``, ``mae``, ``psnr``, ``ssim``, ``ssim_dr2``, each of shape (B,).

    Args:
        pred: (B, C, H, W) reconstruction, clamped to [0, 1] here.
        target: (B, C, H, W) ground truth in [0, 1]; H, W >= 11 (SSIM window).

    Returns:
        dict of per-sample values; errors take ``min`` and similarities ``max`` over {pred, rot180(pred)},
        independently for each metric.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected equal (B, C, H, W) shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred = pred.clamp(0.0, 1.0).to(target.dtype)
    direct = _orientation_metrics(pred, target)
    rotated = _orientation_metrics(rot180(pred), target)
    out: dict[str, Tensor] = {}
    for name in METRIC_NAMES:
        better = torch.minimum if name in ("mse", "mae") else torch.maximum
        out[name] = better(direct[name], rotated[name])
    return out
