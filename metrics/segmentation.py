"""Binary segmentation metrics: the lecture's IoU ``J`` per image and over a data set; boundary F-score.

The lecture's Jaccard index of a prediction p̃ ∈ [0, 1]^n against the ground truth p ∈ {0, 1}^n:
``J(p, p̃) = #{i : p_i = 1 and p̃_i ≥ 0.5} / #{i : p_i = 1 or p̃_i ≥ 0.5}``. Convention for an empty ground
truth and an empty prediction (0 / 0): J = 1 (nothing to find, nothing found).

* Per image (:func:`iou_per_image`): one J per image, averaged over images by the caller ("mean IoU").
* Over a data set (:class:`DatasetIoU`): ``Σ_images |A ∩ B| / Σ_images |A ∪ B|``, the confusion-matrix IoU;
  a torchmetrics ``BinaryJaccardIndex`` (its state is summed across processes under DDP).
* Boundary F-score (:func:`boundary_f_score`), the contour accuracy of DAVIS (Perazzi et al., CVPR 2016;
  Martin et al., TPAMI 2004): boundaries by morphological gradient (3×3 dilation minus 3×3 erosion, so a
  boundary is the 2-pixel band where foreground meets background; image borders are not boundaries),
  precision = share of predicted boundary pixels within ``r`` pixels of a true boundary pixel, recall the
  converse, ``F = 2PR / (P + R)``. The tolerance region is a (2r+1)² square (max-pool dilation, chessboard
  distance ≤ r) where DAVIS uses a disk; ``r`` as DAVIS: ``tolerance`` pixels if ≥ 1, else
  ``ceil(tolerance · image diagonal)`` (DAVIS's default 0.008: 3 px at 256², 6 px at 512²). Empty boundaries
  follow DAVIS: both empty → F = 1; one empty → F = 0.

Per-sample functions take probabilities p̃ (B, 1, H, W) in [0, 1] (apply ``torch.sigmoid`` to logits first; a
value outside [0, 1] raises) and a {0, 1} target of the same shape (or (B, H, W)), and return (B,) float64.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import BinaryJaccardIndex

__all__ = [
    "DatasetIoU",
    "binarize",
    "boundary_f_score",
    "boundary_map",
    "intersection_union",
    "iou_per_image",
    "segmentation_metrics",
]


def _prepare(probs: Tensor, target: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Boolean prediction (p̃ ≥ threshold) and target (p ≥ 0.5), both (B, 1, H, W)."""
    if target.ndim == probs.ndim - 1:
        target = target.unsqueeze(1)
    if probs.ndim != 4 or target.shape != probs.shape:
        raise ValueError(
            "expected probabilities (B, 1, H, W) and a target of the same shape, got "
            f"{tuple(probs.shape)} and {tuple(target.shape)}"
        )
    return binarize(probs, threshold), target >= 0.5


def binarize(probs: Tensor, threshold: float = 0.5) -> Tensor:
    """``p̃ ≥ threshold`` as a bool tensor; p̃ must be probabilities in [0, 1] (not logits)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if probs.dtype != torch.bool and probs.numel() and (probs.min() < 0 or probs.max() > 1):
        raise ValueError(
            f"expected probabilities in [0, 1], got values in [{probs.min().item():.3g}, "
            f"{probs.max().item():.3g}]: pass torch.sigmoid(logits)"
        )
    return probs >= threshold if probs.dtype != torch.bool else probs


def intersection_union(probs: Tensor, target: Tensor, threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Pixel counts ``|A ∩ B|``, ``|A ∪ B|`` per image (int64 (B,) each); A = {p̃ ≥ threshold}, B = {p = 1}."""
    pred, truth = _prepare(probs, target, threshold)
    return (pred & truth).flatten(1).sum(1), (pred | truth).flatten(1).sum(1)


def iou_per_image(probs: Tensor, target: Tensor, threshold: float = 0.5) -> Tensor:
    """The lecture's J per image, (B,) float64; an empty target with an empty prediction gives 1."""
    intersection, union = intersection_union(probs, target, threshold)
    iou = intersection.double() / union.clamp(min=1).double()
    return torch.where(union == 0, torch.ones_like(iou), iou)


def boundary_map(mask: Tensor) -> Tensor:
    """Morphological gradient of a bool mask (B, 1, H, W): 3×3 dilation and not 3×3 erosion (bool).

    Pixels outside the image are ignored by both operations, so the image border is not a boundary.
    """
    m = mask.float()
    dilation = F.max_pool2d(m, 3, stride=1, padding=1)
    erosion = -F.max_pool2d(-m, 3, stride=1, padding=1)
    return (dilation - erosion) > 0


def _tolerance_px(tolerance: float, height: int, width: int) -> int:
    if tolerance <= 0:
        raise ValueError(
            f"tolerance must be > 0 (pixels if >= 1, else a fraction of the diagonal), got {tolerance}"
        )
    return int(tolerance) if tolerance >= 1 else math.ceil(tolerance * math.hypot(height, width))


def boundary_f_score(
    probs: Tensor, target: Tensor, threshold: float = 0.5, tolerance: float = 0.008
) -> Tensor:
    """Boundary F-score per image (DAVIS's F), (B,) float64; see the module docstring.

    Args:
        probs, target: p̃ (B, 1, H, W) in [0, 1] and the {0, 1} ground truth.
        threshold: p̃ ≥ threshold is foreground.
        tolerance: r in pixels if ≥ 1, else the fraction of the image diagonal (DAVIS: 0.008).
    """
    pred, truth = _prepare(probs, target, threshold)
    radius = _tolerance_px(tolerance, *pred.shape[-2:])
    pred_edge, true_edge = boundary_map(pred), boundary_map(truth)

    def near(edge: Tensor) -> Tensor:
        return F.max_pool2d(edge.float(), 2 * radius + 1, stride=1, padding=radius) > 0

    n_pred = pred_edge.flatten(1).sum(1).double()
    n_true = true_edge.flatten(1).sum(1).double()
    precision = (pred_edge & near(true_edge)).flatten(1).sum(1).double() / n_pred.clamp(min=1)
    recall = (true_edge & near(pred_edge)).flatten(1).sum(1).double() / n_true.clamp(min=1)
    # DAVIS's conventions: P = 1 when no boundary is predicted, R = 1 when there is none to find (so both
    # empty → F = 1, and exactly one empty → one of P, R is 0 → F = 0)
    precision = torch.where(n_pred == 0, torch.ones_like(precision), precision)
    recall = torch.where(n_true == 0, torch.ones_like(recall), recall)
    total = precision + recall
    return torch.where(total > 0, 2 * precision * recall / total.clamp(min=1e-12), torch.zeros_like(total))


def segmentation_metrics(
    probs: Tensor, target: Tensor, threshold: float = 0.5, boundary_tolerance: float = 0.008
) -> dict[str, Tensor]:
    """Per-sample metrics ``{"iou", "boundary_f"}``, each (B,) float64 (the project's metric convention)."""
    return {
        "iou": iou_per_image(probs, target, threshold),
        "boundary_f": boundary_f_score(probs, target, threshold, boundary_tolerance),
    }


class DatasetIoU(BinaryJaccardIndex):
    """Data-set IoU ``Σ|A ∩ B| / Σ|A ∪ B|`` over every image seen, a torchmetrics metric (DDP-synced).

    ``update(pred, target)`` takes probabilities p̃ (or logits with ``from_logits=True``, as a task module's
    ``dataset_metrics`` gets the raw network output) and binarises p̃ ≥ ``threshold`` itself (the lecture's
    J; torchmetrics' own threshold is strict, and it would silently apply a sigmoid only to batches whose
    values leave [0, 1], which this class rejects instead). An empty data set or all-empty masks and
    predictions give 1, as per image.
    """

    def __init__(self, threshold: float = 0.5, from_logits: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("zero_division", 1.0)
        super().__init__(threshold=0.5, **kwargs)
        binarize(torch.zeros(0), threshold)  # validates the threshold
        self.iou_threshold, self.from_logits = threshold, from_logits

    def update(self, pred: Tensor, target: Tensor) -> None:
        probs = torch.sigmoid(pred) if self.from_logits else pred
        binary, truth = _prepare(probs, target, self.iou_threshold)
        super().update(binary.long(), truth.long())
