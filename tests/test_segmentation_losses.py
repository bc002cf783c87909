"""Tests for losses/segmentation.py: the lecture's NLL and soft Jaccard (against torch's BCE, the hard Jaccard
and hand values), gradients (gradcheck), the Lovász hinge against hand cases, and the combined loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from losses.segmentation import (
    SegmentationLoss,
    lovasz_hinge,
    nll_per_image,
    soft_jaccard_index,
    soft_jaccard_loss,
    split_aux,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one thread, no stalls


def _masks(seed: int = 0, shape: tuple[int, ...] = (4, 1, 9, 7)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) > 0.5).float(), (torch.rand(shape, generator=g) > 0.6).float()


def _hard_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def test_nll_hand_case_and_torch_bce() -> None:
    # p̃ = σ(0) = 0.5 on a foreground pixel and σ(ln 3) = 0.75 on a background pixel:
    # −[log 0.5 + log 0.25] = 3 ln 2 summed, 1.5 ln 2 per pixel.
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    assert nll_per_image(logits, target).item() == pytest.approx(1.5 * math.log(2.0), rel=1e-6)
    logits = torch.randn(3, 1, 5, 6)
    target = (torch.rand(3, 1, 5, 6) > 0.5).float()
    expected = F.binary_cross_entropy(torch.sigmoid(logits), target, reduction="none").flatten(1).mean(1)
    assert torch.allclose(nll_per_image(logits, target), expected, atol=1e-6)


def test_nll_is_stable_for_large_logits() -> None:
    logits = torch.tensor([100.0, -100.0]).view(1, 1, 1, 2)
    wrong = nll_per_image(logits, torch.tensor([0.0, 1.0]).view(1, 1, 1, 2))
    right = nll_per_image(logits, torch.tensor([1.0, 0.0]).view(1, 1, 1, 2))
    assert wrong.item() == pytest.approx(100.0) and right.item() == pytest.approx(0.0, abs=1e-6)


def test_soft_jaccard_equals_hard_jaccard_on_binary_inputs() -> None:
    pred, target = _masks()
    pred[0].zero_()  # empty prediction on a non-empty target → 0
    pred[1].zero_(), target[1].zero_()  # empty ∩ empty → 1 by convention
    got = soft_jaccard_index(pred, target)
    expected = [_hard_jaccard(p.numpy() > 0.5, t.numpy() > 0.5) for p, t in zip(pred, target, strict=True)]
    assert got.shape == (4,)
    assert np.allclose(got.numpy(), expected, atol=1e-6)
    assert got[0] == pytest.approx(0.0, abs=1e-6) and got[1] == pytest.approx(1.0)
    batch = soft_jaccard_index(pred, target, per_image=False)
    assert batch.shape == () and batch.item() == pytest.approx(_hard_jaccard(pred.numpy(), target.numpy()))


def test_soft_jaccard_hand_case() -> None:
    # ⟨p, p̃⟩ = 0.8, ‖p‖₁ = 2, ‖p̃‖₁ = 0.8 + 0.5 = 1.3: J̃ = 0.8 / 2.5
    probs = torch.tensor([0.8, 0.0, 0.5, 0.0]).view(1, 1, 2, 2)
    target = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert soft_jaccard_index(probs, target).item() == pytest.approx(0.32, rel=1e-5)


def test_soft_jaccard_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    probs = torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64).requires_grad_()
    logits = torch.randn(2, 1, 3, 4, generator=g, dtype=torch.float64).requires_grad_()
    target = (torch.rand(2, 1, 3, 4, generator=g) > 0.5).double()
    assert torch.autograd.gradcheck(lambda p: soft_jaccard_index(p, target), (probs,))
    assert torch.autograd.gradcheck(lambda p: soft_jaccard_index(p, target, per_image=False), (probs,))
    assert torch.autograd.gradcheck(lambda t: soft_jaccard_loss(t, target), (logits,))
    assert torch.autograd.gradcheck(lambda t: nll_per_image(t, target), (logits,))


def test_lovasz_hinge_hand_case() -> None:
    # logits (2, 0.5), target (1, 0): hinge errors (1 − 2, 1 + 0.5) = (−1, 1.5); sorted: the background
    # pixel first. Δ_J({bg pixel}) = 1 − 1/2 = 0.5, so the loss is 1.5 · 0.5 + 0 = 0.75.
    logits = torch.tensor([2.0, 0.5]).view(1, 1, 1, 2)
    target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    assert lovasz_hinge(logits, target).item() == pytest.approx(0.75)


def test_lovasz_hinge_equals_jaccard_loss_for_unit_errors() -> None:
    """With hinge errors exactly 0 (logit ±1 of the right sign) or 1 (logit 0), the Lovász extension is the
    set function itself: 1 − J of the prediction that gets the error-1 pixels wrong."""
    target, wrong = _masks(seed=3)
    signs = 2 * target - 1
    logits = torch.where(wrong.bool(), torch.zeros_like(target), signs)
    prediction = torch.where(wrong.bool(), 1 - target, target)
    expected = [
        1 - _hard_jaccard(p.numpy() > 0.5, t.numpy() > 0.5) for p, t in zip(prediction, target, strict=True)
    ]
    assert lovasz_hinge(logits, target).item() == pytest.approx(np.mean(expected), rel=1e-5)
    batch = 1 - _hard_jaccard(prediction.numpy() > 0.5, target.numpy() > 0.5)
    assert lovasz_hinge(logits, target, per_image=False).item() == pytest.approx(batch, rel=1e-5)
    assert lovasz_hinge(3 * signs, target).item() == 0.0  # every margin ≥ 1


def test_combined_loss_is_the_lecture_formula_with_aux() -> None:
    logits, aux = torch.randn(2, 3, 1, 8, 8).unbind(0)
    target, _ = _masks(shape=(3, 1, 8, 8))
    w = 0.7
    loss = SegmentationLoss(jaccard_weight=w, aux_weight=0.4)
    main = (
        nll_per_image(logits, target).mean()
        + w * (1 - soft_jaccard_index(torch.sigmoid(logits), target)).mean()
    )
    aux_term = nll_per_image(aux, target).mean() + w * soft_jaccard_loss(aux, target)
    assert loss(logits, target).item() == pytest.approx(main.item(), rel=1e-6)
    assert loss((logits, aux), target).item() == pytest.approx((main + 0.4 * aux_term).item(), rel=1e-6)
    terms = loss.terms((logits, aux), target)
    assert set(terms) == {"loss", "nll", "jaccard", "aux"}
    nll_only = SegmentationLoss(jaccard_weight=0.0)(logits, target.squeeze(1))  # (B, H, W) target
    assert nll_only.item() == pytest.approx(nll_per_image(logits, target).mean().item(), rel=1e-6)
    jaccard_only = SegmentationLoss(nll_weight=0.0, per_image=False)(logits, target)
    assert jaccard_only.item() == pytest.approx(soft_jaccard_loss(logits, target, per_image=False).item())
    lovasz = SegmentationLoss(jaccard_weight=1.0, surrogate="lovasz")(logits, target)
    assert lovasz.item() == pytest.approx(
        (nll_per_image(logits, target).mean() + lovasz_hinge(logits, target)).item()
    )


@pytest.mark.parametrize("surrogate", ["soft_jaccard", "lovasz"])
def test_combined_loss_drives_free_logits_to_the_mask(surrogate: str) -> None:
    target, _ = _masks(seed=5, shape=(2, 1, 16, 16))
    logits = torch.zeros_like(target, requires_grad=True)
    loss_fn = SegmentationLoss(jaccard_weight=1.0, surrogate=surrogate)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    first = loss_fn(logits, target).item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = loss_fn(logits, target)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2 * first
    assert soft_jaccard_index((logits > 0).float(), target).min().item() == 1.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        SegmentationLoss(surrogate="dice")
    with pytest.raises(ValueError, match="not both"):
        SegmentationLoss(nll_weight=0.0, jaccard_weight=0.0)
    with pytest.raises(ValueError, match="same shape"):
        nll_per_image(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match="aux_logits"):
        split_aux((torch.zeros(1), torch.zeros(1), torch.zeros(1)))
