"""Tests for models/edsr.py: shapes for r = 2, 3, 4, the residual structure, and a tiny net that overfits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.edsr import EDSR, ResidualBlock
from operators.degradation import make_lr
from operators.tiling import receptive_radius


@pytest.mark.parametrize("r", [2, 3, 4])
def test_edsr_upscales_by_r(r: int) -> None:
    net = EDSR(r, channels=8, num_blocks=2)
    assert net(torch.rand(2, 3, 7, 9)).shape == (2, 3, 7 * r, 9 * r)
    assert net.tail[0].out_channels == 3 * r**2 and net.upscale_factor == r


def test_edsr_layers_and_receptive_radius() -> None:
    net = EDSR(4, channels=16, num_blocks=3)
    assert sum(isinstance(m, ResidualBlock) for m in net.modules()) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert receptive_radius(net) == 2 * 3 + 3  # head, 2 per block, body end, tail: 3×3 convs


def test_residual_block_is_identity_when_its_branch_is_zero() -> None:
    block = ResidualBlock(4, res_scale=0.1)
    torch.nn.init.zeros_(block.body[-1].weight)
    torch.nn.init.zeros_(block.body[-1].bias)
    x = torch.randn(1, 4, 5, 5)
    assert torch.equal(block(x), x)


def test_bad_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="upscale_factor"):
        EDSR(5)
    with pytest.raises(ValueError, match="expects"):
        EDSR(2, channels=4, num_blocks=1)(torch.rand(1, 1, 4, 4))


def test_tiny_edsr_overfits_one_crop(single_thread) -> None:
    torch.manual_seed(0)
    hr = F.interpolate(torch.rand(1, 3, 6, 6), size=(48, 48), mode="bicubic").clamp(0, 1)
    lr = make_lr(hr, 2)
    net = EDSR(2, channels=16, num_blocks=2)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        loss = F.mse_loss(net(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10
