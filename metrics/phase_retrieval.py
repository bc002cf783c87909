"""Per-sample, 180-degree-rotation-invariant image metrics for Fourier phase retrieval.

Every metric is computed for both orientations of the prediction (``pred`` and ``rot180(pred)``) and the
better value is kept *per sample and per metric* (min for errors, max for PSNR/SSIM), since ``|F x|`` cannot
distinguish them (Dekel & Gugel, ICFSP 2022). ``pred`` is clamped to [0, 1] before all metrics; ``target`` is
used as is (expected in [0, 1]).

Ours:

* ``mse``, ``mae``: mean over C, H, W.
* ``psnr``: ``10 * log10(1 / mse)`` per image (data range 1), averaged; mse is floored at 1e-10, so PSNR
  <= 100 dB stays finite.
* ``ssim``: torchmetrics ``structural_similarity_index_measure``'s convention (Gaussian window 11, sigma 1.5,
  k1=0.01, k2=0.03, data range 1, the mean of the map of the reflect-padded images), one value per image
  (over channels too if C > 1); computed by the shared core :func:`metrics.ssim.ssim` (``border="reflect"``).
* ``ssim_dr2``: the same with ``data_range=2`` on the same [0, 1] images.

The paper's (what the published PR-DAD rows measure; the authors' ``training/phase_retrival_evaluator.py``
in gugas81/pr-dad, scikit-image 0.18):

* ``ssim_paper``: ``skimage.metrics.structural_similarity`` with its defaults for float images: a 7x7
  uniform window, sample covariance, only windows inside the image, data range 2 (a float image's dtype
  range, -1..1), on images in [0, 1].
* ``psnr_paper`` (a data-set metric, :class:`PaperPSNR`): ``20 * log10(1 / mean MSE)`` — their evaluator
  takes the *split's* mean of the per-image (rot180-invariant) MSE and applies ``20 log10(max / mse)`` with
  no square root (max = 1 for these data sets). Table V: MSE 0.0078 beside PSNR 42.1862 =
  ``20 log10(1 / 0.007775)``; an average of per-image values would be higher (Jensen), by ~3 dB for a spread
  of errors like ours, so it is not what the tables hold.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from metrics.ssim import ssim as ssim_core
from operators.fourier import rot180

__all__ = [
    "METRIC_NAMES",
    "MSE_FLOOR",
    "SSIM_WINDOW",
    "PaperPSNR",
    "psnr_from_mse",
    "psnr_paper_from_mse",
    "rot180_invariant_metrics",
    "rot180_invariant_mse",
    "ssim",
    "ssim_paper",
]

SSIM_WINDOW = "gaussian 11, sigma 1.5"
METRIC_NAMES: tuple[str, ...] = ("mse", "mae", "psnr", "ssim", "ssim_dr2", "ssim_paper")
MSE_FLOOR = 1e-10
_ERRORS = ("mse", "mae")


def psnr_from_mse(mse: Tensor, data_range: float = 1.0) -> Tensor:
    """``10 * log10(data_range**2 / max(mse, 1e-10))``."""
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(MSE_FLOOR))


def psnr_paper_from_mse(mean_mse: Tensor, max_value: float = 1.0) -> Tensor:
    """The published PR-DAD PSNR column: ``20 * log10(max_value / max(mean_mse, 1e-10))`` (no square root;
    ``mean_mse`` is the split's mean MSE, see the module docstring)."""
    return 20.0 * torch.log10(max_value / mean_mse.clamp_min(MSE_FLOOR))


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image SSIM (B,) of (B, C, H, W) inputs, Gaussian window 11, sigma 1.5 (Wang et al., TIP 2004),
    reflect-padded borders (torchmetrics' convention)."""
    return ssim_core(pred, target, data_range, window="gaussian", kernel_size=11, sigma=1.5, border="reflect")


def ssim_paper(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM (B,) as scikit-image 0.18's defaults compute it for float images: 7x7 uniform window,
    sample covariance, valid windows only, data range 2 (``structural_similarity(x, y, data_range=2)``)."""
    return ssim_core(
        pred, target, 2.0, window="uniform", kernel_size=7, sample_covariance=True, border="valid"
    )


def _orientation_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    diff = (pred - target).flatten(1)
    mse = diff.square().mean(dim=1)
    return {
        "mse": mse,
        "mae": diff.abs().mean(dim=1),
        "psnr": psnr_from_mse(mse),
        "ssim": ssim(pred, target, data_range=1.0),
        "ssim_dr2": ssim(pred, target, data_range=2.0),
        "ssim_paper": ssim_paper(pred, target),
    }


def _check(pred: Tensor, target: Tensor) -> Tensor:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected equal (B, C, H, W) shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    return pred.clamp(0.0, 1.0).to(target.dtype)


def rot180_invariant_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """180-degree-invariant ``mse``, ``mae``, ``psnr``, ``ssim``, ``ssim_dr2``, ``ssim_paper``, each (B,).

    Args:
        pred: (B, C, H, W) reconstruction, clamped to [0, 1] here.
        target: (B, C, H, W) ground truth in [0, 1]; H, W >= 11 (SSIM window).

    Returns:
        dict of per-sample values; errors take ``min`` and similarities ``max`` over {pred, rot180(pred)},
        independently for each metric.
    """
    pred = _check(pred, target)
    direct = _orientation_metrics(pred, target)
    rotated = _orientation_metrics(rot180(pred), target)
    out: dict[str, Tensor] = {}
    for name in METRIC_NAMES:
        better = torch.minimum if name in _ERRORS else torch.maximum
        out[name] = better(direct[name], rotated[name])
    return out


def rot180_invariant_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample ``min(MSE(pred, x), MSE(rot180(pred), x))`` (B,), ``pred`` clamped to [0, 1]."""
    pred = _check(pred, target)
    errors = [(p - target).square().flatten(1).mean(dim=1) for p in (pred, rot180(pred))]
    return torch.minimum(*errors)


class PaperPSNR(Metric):
    """``psnr_paper`` over a whole split: ``20 * log10(1 / mean_i MSE_i)`` with ``MSE_i`` the rot180-invariant
    per-image MSE (:func:`psnr_paper_from_mse`; the published PR-DAD tables' PSNR column)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, max_value: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_value = max_value
        self.add_state("sum_mse", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        mse = rot180_invariant_mse(pred, target)
        self.sum_mse += mse.double().sum()
        self.count += mse.numel()

    def compute(self) -> Tensor:
        return psnr_paper_from_mse(self.sum_mse / self.count.clamp_min(1), self.max_value).float()
