"""180-degree-invariant reconstruction loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from losses.rot180 import Rot180InvariantLoss, rot180_invariant_error
from operators.fourier import rot180


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(4, 1, 8, 8, generator=g)
    pred = target + 0.1 * torch.randn(4, 1, 8, 8, generator=g)
    return pred, target


@pytest.mark.parametrize(("norm", "fn"), [("l2", F.mse_loss), ("l1", F.l1_loss)])
def test_equals_plain_loss_of_better_orientation(norm: str, fn) -> None:
    pred, target = _pair()
    pred[1::2] = rot180(pred[1::2])  # half the batch predicted upside down
    err = rot180_invariant_error(pred, target, norm)
    assert err.shape == (4,)
    for b in range(4):
        direct = fn(pred[b], target[b])
        rotated = fn(rot180(pred[b]), target[b])
        assert torch.allclose(err[b], torch.minimum(direct, rotated))
        better = direct if b % 2 == 0 else rotated
        assert torch.allclose(err[b], better)
        assert rotated > 2 * direct if b % 2 == 0 else direct > 2 * rotated


def test_rotated_target_gives_zero() -> None:
    _, target = _pair()
    assert torch.count_nonzero(rot180_invariant_error(rot180(target), target)) == 0
    plain = F.mse_loss(rot180(target), target)
    assert plain > 0.01  # the non-invariant loss would penalise it


def test_module_is_batch_mean() -> None:
    pred, target = _pair(1)
    loss = Rot180InvariantLoss("l1")(pred, target)
    assert torch.allclose(loss, rot180_invariant_error(pred, target, "l1").mean())


def test_gradient_flows_through_better_orientation() -> None:
    pred, target = _pair(2)
    pred = rot180(pred).requires_grad_(True)
    Rot180InvariantLoss()(pred, target).backward()
    assert pred.grad is not None
    expected = 2 * (pred.detach() - rot180(target)) / pred[0].numel() / pred.shape[0]
    assert torch.allclose(pred.grad, expected, atol=1e-7)


def test_invalid() -> None:
    with pytest.raises(ValueError, match="l2"):
        Rot180InvariantLoss("huber")
    with pytest.raises(ValueError, match="shapes"):
        rot180_invariant_error(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
