"""Tests for metrics/segmentation.py: IoU per image and over a data set against hand counts (empty masks
included), torchmetrics' data-set IoU, and the boundary F-score against scikit-image / SciPy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.segmentation import find_boundaries

from metrics.segmentation import (
    DatasetIoU,
    boundary_f_score,
    boundary_map,
    intersection_union,
    iou_per_image,
    segmentation_metrics,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one thread, no stalls

PRED = [[0.9, 0.5, 0.1], [0.2, 0.7, 0.4], [0.0, 0.3, 0.49]]  # p̃ ≥ 0.5 at (0,0), (0,1), (1,1)
TRUTH = [[1, 0, 0], [0, 1, 1], [0, 0, 0]]  # ∩ = 2 pixels, ∪ = 4 pixels


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three 3×3 images: the hand case (J = 2/4), empty target and empty prediction (J = 1 by convention),
    an empty target with one predicted pixel (J = 0 / 1 = 0)."""
    probs = torch.zeros(3, 1, 3, 3)
    target = torch.zeros(3, 1, 3, 3)
    probs[0, 0], target[0, 0] = torch.tensor(PRED), torch.tensor(TRUTH, dtype=torch.float32)
    probs[1, 0] = 0.2
    probs[2, 0, 1, 1] = 0.8
    return probs, target


def _blobs(seed: int, size: int = 48, n: int = 3) -> torch.Tensor:
    """Smooth random masks (B, 1, size, size)."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, 4, 4))
    return torch.from_numpy(noise > 0).unsqueeze(1)


def test_iou_per_image_hand_counts() -> None:
    probs, target = _batch()
    intersection, union = intersection_union(probs, target)
    assert intersection.tolist() == [2, 0, 0] and union.tolist() == [4, 0, 1]
    iou = iou_per_image(probs, target)
    assert iou.dtype == torch.float64 and iou.tolist() == [0.5, 1.0, 0.0]
    assert iou_per_image(probs, target.squeeze(1)).tolist() == [0.5, 1.0, 0.0]  # (B, H, W) target


def test_dataset_iou_is_torchmetrics_and_equals_hand_sum() -> None:
    probs, target = _batch()
    metric = DatasetIoU()
    metric.update(probs[:2], target[:2])
    metric.update(probs[2:], target[2:])
    # Σ∩ / Σ∪ = (2 + 0 + 0) / (4 + 0 + 1)
    assert metric.compute().item() == pytest.approx(2 / 5)
    blobs_p, blobs_t = _blobs(1).float() * 0.8 + 0.1, _blobs(2).float()
    metric.reset()
    metric.update(blobs_p, blobs_t)
    inter, union = intersection_union(blobs_p, blobs_t)
    assert metric.compute().item() == pytest.approx(inter.sum().item() / union.sum().item(), rel=1e-6)
    from_logits = DatasetIoU(from_logits=True)
    from_logits.update(torch.logit(blobs_p), blobs_t)
    assert from_logits.compute().item() == pytest.approx(metric.compute().item())
    empty = DatasetIoU()
    empty.update(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))
    assert empty.compute().item() == 1.0


def test_logits_are_rejected() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        iou_per_image(torch.randn(2, 1, 4, 4) * 5, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="sigmoid"):
        DatasetIoU().update(torch.randn(2, 1, 4, 4) * 5, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        iou_per_image(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 3))


def test_boundary_map_is_the_thick_boundary_of_skimage() -> None:
    masks = _blobs(3)
    ours = boundary_map(masks)
    for mask, edge in zip(masks, ours, strict=True):
        reference = find_boundaries(mask[0].numpy(), connectivity=2, mode="thick")
        assert np.array_equal(edge[0].numpy(), reference)


def _reference_f(pred: np.ndarray, truth: np.ndarray, radius: int) -> float:
    """DAVIS's F with SciPy: boundaries, square tolerance, P / R / F with its empty conventions."""
    square = np.ones((3, 3), bool)
    pe = ndimage.binary_dilation(pred, square) & ~ndimage.binary_erosion(pred, square, border_value=1)
    te = ndimage.binary_dilation(truth, square) & ~ndimage.binary_erosion(truth, square, border_value=1)
    tol = np.ones((2 * radius + 1,) * 2, bool)
    p = (pe & ndimage.binary_dilation(te, tol)).sum() / pe.sum() if pe.sum() else 1.0
    r = (te & ndimage.binary_dilation(pe, tol)).sum() / te.sum() if te.sum() else 1.0
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_boundary_f_against_scipy_reference() -> None:
    pred, truth = _blobs(4), _blobs(5)
    for radius in (1, 2, 4):
        ours = boundary_f_score(pred.float(), truth.float(), tolerance=radius)
        expected = [
            _reference_f(p[0].numpy(), t[0].numpy(), radius) for p, t in zip(pred, truth, strict=True)
        ]
        assert np.allclose(ours.numpy(), expected), radius
    # the default tolerance: 0.008 of the 48×48 diagonal (67.9 px) → 1 pixel
    assert torch.equal(
        boundary_f_score(pred.float(), truth.float()),
        boundary_f_score(pred.float(), truth.float(), tolerance=1),
    )


def test_boundary_f_identical_shifted_and_empty() -> None:
    truth = torch.zeros(1, 1, 40, 40)
    truth[..., 10:30, 8:28] = 1
    shifted = torch.roll(truth, shifts=3, dims=-1)
    assert boundary_f_score(truth, truth, tolerance=1).item() == 1.0
    f1, f2, f3 = (boundary_f_score(shifted, truth, tolerance=r).item() for r in (1, 2, 3))
    assert f1 < f2 < 1.0 and f3 == 1.0  # a 3-pixel shift is within a 3-pixel tolerance, not a smaller one
    empty = torch.zeros_like(truth)
    assert boundary_f_score(empty, empty).item() == 1.0
    assert boundary_f_score(empty, truth).item() == 0.0 and boundary_f_score(truth, empty).item() == 0.0
    full = torch.ones_like(truth)  # the image border is not a boundary
    assert boundary_f_score(full, full).item() == 1.0


def test_segmentation_metrics_dict() -> None:
    probs, target = _batch()
    out = segmentation_metrics(probs, target)
    assert set(out) == {"iou", "boundary_f"}
    assert all(v.shape == (3,) and v.dtype == torch.float64 for v in out.values())
    with pytest.raises(ValueError, match="tolerance"):
        boundary_f_score(probs, target, tolerance=0)
