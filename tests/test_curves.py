"""Tests for models/curves.py: the Zero-DCE curve, its 1-D LUT evaluation, the model at init."""

from __future__ import annotations

import pytest
import torch

from models.curves import CurveNet, apply_curves, apply_lut1d, curve_lut1d, curves, curves_color_matrix


def test_curve_against_hand_computation() -> None:
    x = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    alphas = torch.tensor([[[0.5, -0.5, 0.0]]], dtype=torch.float64)  # one iteration
    y = apply_curves(x, alphas)
    assert torch.allclose(
        y[0, 0, 0], torch.tensor([0.0, 0.25 + 0.5 * 0.25 * 0.75, 0.625, 1.0], dtype=x.dtype)
    )
    assert torch.allclose(
        y[0, 1, 0], torch.tensor([0.0, 0.25 - 0.5 * 0.25 * 0.75, 0.375, 1.0], dtype=x.dtype)
    )
    assert torch.equal(y[0, 2], x[0, 2])
    two = apply_curves(x, torch.tensor([[[0.5, 0, 0], [0.5, 0, 0]]], dtype=x.dtype))
    once = y[0, 0, 0]
    assert torch.allclose(two[0, 0, 0], once + 0.5 * once * (1 - once))


def test_curves_keep_the_unit_interval_and_stay_monotone() -> None:
    t = torch.linspace(0, 1, 1001, dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    for a in (-1.0, -0.3, 0.7, 1.0):
        y = apply_curves(t, torch.full((1, 8, 3), a, dtype=t.dtype))
        assert y.min() >= 0 and y.max() <= 1
        assert (y.diff(dim=-1) >= 0).all()
        assert ((y[..., 500] > 0.5) == (a > 0)).all()


def test_lut1d_matches_the_exact_curve() -> None:
    g = torch.Generator().manual_seed(0)
    alphas = torch.rand(2, 8, 3, generator=g, dtype=torch.float64) * 2 - 1
    x = torch.rand(2, 3, 20, 30, generator=g, dtype=torch.float64)
    exact = apply_curves(x, alphas)
    lut = curve_lut1d(alphas, 4096)
    assert lut.shape == (2, 3, 4096)
    assert (apply_lut1d(x, lut) - exact).abs().max() < 1e-6
    for chunks in (1, 2, 7):  # 7 does not divide 600 pixels (padding)
        assert torch.allclose(apply_lut1d(x, lut, chunks=chunks), apply_lut1d(x, lut), atol=1e-12)
    assert (apply_lut1d(x, curve_lut1d(alphas, 256)) - exact).abs().max() < 1e-4
    nodes = torch.linspace(0, 1, 5, dtype=torch.float64).view(1, 1, 1, 5).expand(2, 3, 1, 5)
    assert torch.allclose(apply_lut1d(nodes, curve_lut1d(alphas, 5)), apply_curves(nodes, alphas), atol=1e-12)


def test_model_starts_as_identity_and_learns(single_thread: None) -> None:
    x = torch.rand(2, 3, 40, 50, generator=torch.Generator().manual_seed(1))
    small = {"thumb_size": 64, "widths": (4, 4, 4, 4, 4)}
    for model in (CurveNet(**small), CurveNet(color_matrix=True, lut_size=None, **small)):
        model.eval()
        assert torch.allclose(model(x), x, atol=1e-5)
        model.train()
        (model(x) - x.sqrt()).square().mean().backward()
        assert model.backbone.head.weight.grad.abs().sum() > 0


def test_sizes_and_bad_arguments() -> None:
    assert sum(p.numel() for p in curves().parameters()) == 442_136
    assert sum(p.numel() for p in curves_color_matrix().parameters()) == 515_873 < 1_000_000
    with pytest.raises(ValueError, match="alphas"):
        apply_curves(torch.rand(1, 3, 4, 4), torch.rand(1, 8))
    with pytest.raises(ValueError, match="lut_size"):
        CurveNet(lut_size=1)
