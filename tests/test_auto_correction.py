"""Tests for algorithms/auto_correction.py: the classical one-tap baselines do what their formulas say."""

from __future__ import annotations

import pytest
import torch

from algorithms.auto_correction import (
    AutoGamma,
    AutoLevels,
    ClaheLightness,
    GrayWorld,
    auto_gamma,
    auto_levels,
    clahe_lightness,
    combined,
    gray_world,
)
from operators.photo_degradation import luma, srgb_to_linear


def _photo(b: int = 2, h: int = 48, w: int = 64, lo: float = 0.1, hi: float = 0.6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, h // 8, w // 8, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return lo + (hi - lo) * x


def test_gray_world_makes_channel_means_equal() -> None:
    cast = torch.tensor([1.0, 0.8, 0.55], dtype=torch.float64).view(1, 3, 1, 1)
    x = _photo() * cast
    assert srgb_to_linear(x).mean(dim=(2, 3)).std(dim=1).min() > 0.02  # a visible cast
    linear_means = srgb_to_linear(gray_world(x)).mean(dim=(2, 3))
    assert torch.allclose(linear_means, linear_means.mean(dim=1, keepdim=True).expand(-1, 3), atol=1e-9)
    encoded_means = gray_world(x, linear=False).mean(dim=(2, 3))
    assert torch.allclose(encoded_means, encoded_means.mean(dim=1, keepdim=True).expand(-1, 3), atol=1e-12)
    grey = torch.full((1, 3, 8, 8), 0.4, dtype=torch.float64)
    assert torch.allclose(gray_world(grey), grey, atol=1e-12)


def test_auto_levels_maps_the_percentiles_to_0_and_1() -> None:
    ramp = torch.linspace(0.2, 0.7, 1001, dtype=torch.float64)
    x = torch.stack([ramp, 0.5 * ramp, ramp.flip(0)]).view(1, 3, 1, 1001)
    # Per channel: the 0.5 % and 99.5 % points of each channel become 0 and 1, the midpoint 0.5.
    y = auto_levels(x, 0.005, 0.995, mode="channel")
    lo, hi = torch.quantile(x[0, :, 0], torch.tensor([0.005, 0.995], dtype=x.dtype), dim=1)
    assert torch.allclose(y, ((x - lo.view(1, 3, 1, 1)) / (hi - lo).view(1, 3, 1, 1)).clamp(0, 1))
    assert torch.allclose(y[0, 0, 0, [5, 500, 995]], torch.tensor([0.0, 0.5, 1.0], dtype=x.dtype), atol=1e-9)
    assert y[0, :2, 0, :5].max() == 0 and y[0, :2, 0, -5:].min() == 1 and y[0, 2, 0, :5].min() == 1
    # Luma: one stretch for all channels, from the luma's percentiles.
    y = auto_levels(x, mode="luma")
    lo, hi = torch.quantile(luma(x).flatten(), torch.tensor([0.005, 0.995], dtype=x.dtype))
    assert torch.allclose(y, ((x - lo) / (hi - lo)).clamp(0, 1))
    grey = ramp.view(1, 1, 1, -1).expand(1, 3, 1, -1)
    q = torch.tensor([0.005, 0.995], dtype=x.dtype)
    assert torch.allclose(
        luma(auto_levels(grey, mode="luma")).quantile(q), torch.tensor([0.0, 1.0], dtype=x.dtype)
    )
    flat = torch.full((1, 3, 4, 4), 0.3)
    assert torch.equal(auto_levels(flat), flat)
    with pytest.raises(ValueError, match="mode"):
        auto_levels(x, mode="hist")


def test_auto_levels_large_images_use_a_subsample() -> None:
    x = torch.rand(1, 3, 1100, 1000, generator=torch.Generator().manual_seed(3))  # 1.1 Mpx > 2^20
    y = auto_levels(x, mode="joint")
    lo, hi = torch.quantile(x.flatten()[::4], torch.tensor([0.005, 0.995]))  # an independent estimate
    assert torch.allclose(y, ((x - lo) / (hi - lo)).clamp(0, 1), atol=2e-3)


def test_auto_gamma_moves_mean_luma_to_mid_grey() -> None:
    for lo, hi in ((0.05, 0.4), (0.5, 0.95)):  # dark and bright
        x = _photo(lo=lo, hi=hi)
        assert (luma(x).mean() - 0.5).abs() > 0.1
        y = auto_gamma(x)
        assert torch.allclose(luma(y).mean(dim=(1, 2, 3)), torch.full((2,), 0.5, dtype=x.dtype), atol=0.03)
    grey = torch.full((1, 3, 4, 4), 0.2, dtype=torch.float64)
    assert torch.allclose(auto_gamma(grey), torch.full_like(grey, 0.5))


def test_clahe_raises_local_contrast_and_keeps_colour() -> None:
    x = _photo(h=64, w=64, lo=0.4, hi=0.55).float()
    y = clahe_lightness(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert luma(y).std() > 1.5 * luma(x).std()
    grey = torch.full((1, 3, 64, 64), 0.5)
    grey[..., 20:40, 20:40] = 0.55
    out = clahe_lightness(grey)
    assert (out.max(dim=1).values - out.min(dim=1).values).max() < 0.02  # grey stays grey


def test_modules_have_no_parameters_and_combined_runs() -> None:
    x = _photo().float()
    modules = [GrayWorld(), AutoLevels(), AutoGamma(), ClaheLightness(), combined()]
    for module in modules:
        assert sum(p.numel() for p in module.parameters()) == 0
        y = module(x)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert torch.allclose(combined()(x), auto_gamma(auto_levels(gray_world(x))))
    with pytest.raises(ValueError, match="RGB"):
        GrayWorld()(x[:, :1])
