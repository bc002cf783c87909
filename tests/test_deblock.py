"""Tests for models/deblock.py: residual AR-CNN shapes, identity at init, composition with an SR net."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.deblock import ARCNNDeblock, DeblockThenSR
from models.espcn import BicubicUpsampler, espcn
from operators.degradation import jpeg_compress


def test_shape_and_identity_at_init() -> None:
    net = ARCNNDeblock()
    x = torch.rand(2, 3, 20, 24)
    out = net(x)
    assert out.shape == x.shape
    assert torch.equal(out, x)  # zero-initialised last layer: x + 0
    assert [m.kernel_size[0] for m in net.body if isinstance(m, torch.nn.Conv2d)] == [9, 7, 1, 5]


def test_is_trainable_from_identity(single_thread) -> None:
    torch.manual_seed(0)
    clean = F.interpolate(torch.rand(1, 3, 4, 4), size=(32, 32), mode="bicubic").clamp(0, 1)
    noisy = jpeg_compress(clean, quality=10)
    net = ARCNNDeblock(features=(8, 8, 8), kernel_sizes=(5, 3, 1, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = F.mse_loss(net(noisy), clean).item()
    for _ in range(10):
        loss = F.mse_loss(net(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert F.mse_loss(net(noisy), clean).item() < start


def test_validation() -> None:
    with pytest.raises(ValueError, match="kernel_sizes"):
        ARCNNDeblock(kernel_sizes=(9, 7))
    with pytest.raises(ValueError, match="odd"):
        ARCNNDeblock(kernel_sizes=(9, 7, 2, 5))


def test_deblock_then_sr() -> None:
    x = torch.rand(1, 3, 8, 10)
    model = DeblockThenSR(ARCNNDeblock(), espcn(2))
    assert model(x).shape == (1, 3, 16, 20)
    assert model.upscale_factor == 2
    baseline = DeblockThenSR(ARCNNDeblock(), BicubicUpsampler(3))
    assert torch.equal(baseline(x), BicubicUpsampler(3)(x))  # identity deblocker at init
