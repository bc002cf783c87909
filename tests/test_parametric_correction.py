"""Tests for models/parametric_correction.py: identity at init, bounded estimates, the exact inverse with the
true parameters, the baked LUT against the float path, and a tiny model that learns to undo a degradation."""

from __future__ import annotations

import pytest
import torch

from metrics.color import psnr
from models.adaptive_lut import thumbnail
from models.parametric_correction import ParametricCorrection
from operators.photo_degradation import PhotoDegradationParams, degrade_photo, luma


def _net(**kwargs: object) -> ParametricCorrection:
    small = {
        "thumb_size": 32,
        "widths": (8, 8, 8, 8, 8),
        "histogram_bins": 8,
        "encoder": "cnn",
        "dropout": 0.0,
    }
    return ParametricCorrection(**{**small, **kwargs}).eval()


def _photos(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    coarse = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic").clamp(0, 1)


def _set_estimate(net: ParametricCorrection, raw: torch.Tensor) -> None:
    """Make the estimator output ``raw`` (6,) for every image (the head's bias; everything else zeroed)."""
    with torch.no_grad():
        net.estimator.head.weight.zero_()
        net.estimator.head.bias.copy_(raw)


def test_starts_as_the_identity_and_the_sample_path_agrees(single_thread: None) -> None:
    net, x = _net(), _photos(2)
    assert torch.allclose(net(x), x, atol=1e-5)
    _set_estimate(net, torch.tensor([0.3, -0.2, 0.1, 0.2, -0.3, 0.4]))
    at = x.flatten(2)[..., ::7].unsqueeze(-1)  # a sample of each image's pixels
    assert torch.allclose(net(x, at), net(x).flatten(2)[..., ::7].unsqueeze(-1), atol=1e-6)


def test_estimates_stay_within_their_bounds() -> None:
    net = _net(max_ev=2.0, max_cast=0.5, max_factor=1.5)
    _set_estimate(net, torch.full((6,), 50.0))
    with torch.no_grad():
        params, pivot = net.estimate(_photos(1))
    assert params.ev.item() == pytest.approx(2.0)
    assert params.gamma.item() == params.contrast.item() == params.saturation.item() == pytest.approx(1.5)
    red_over_blue = (params.gains[0, 0] / params.gains[0, 2]).item()
    assert red_over_blue == pytest.approx(2.0**0.5)  # a temperature of 0.5 stops
    assert pivot.item() == pytest.approx(luma(thumbnail(_photos(1), 32)).mean().item())
    with pytest.raises(ValueError, match="max_factor"):
        _net(max_factor=1.0)


def test_the_true_parameters_invert_the_degradation(single_thread: None) -> None:
    """With the estimate equal to the degradation, the correction is exact (no clipping; a 32 px photo is its
    own thumbnail, so the pivot is its mean luma, the one the degradation kept)."""
    net, x = _net(), _photos(1) * 0.5 + 0.25
    raw = torch.tensor([0.2, 0.1, -0.1, 0.3, -0.2, 0.25])
    _set_estimate(net, raw)
    true = net.estimate(x)[0]  # the same six numbers, as degradation parameters
    y = degrade_photo(x, true, clip=False, sensor_clip=False)
    assert torch.allclose(net.estimate(y)[1], luma(y).mean(dim=(1, 2, 3)), atol=1e-6)
    assert torch.allclose(net(y), x, atol=1e-4)


def test_the_baked_lut_matches_the_float_path() -> None:
    net, x = _net(lut_size=33), _photos(2, 48)
    _set_estimate(net, torch.tensor([0.2, 0.1, -0.1, -0.3, 0.2, 0.25]))
    baked = torch.cat([t.apply(xi[None]) for t, xi in zip(net.global_transforms(x), x, strict=True)])
    assert (baked.clamp(0, 1) - net(x).clamp(0, 1)).abs().max() < 0.02  # trilinear between 33³ nodes


def test_a_tiny_model_learns_to_undo_a_degradation(single_thread: None) -> None:
    torch.manual_seed(0)
    photos = _photos(12)
    train, held_out = photos[:8], photos[8:]
    params = PhotoDegradationParams(
        *(torch.tensor(v) for v in ([-1.0], [[1.3, 1.0, 0.8]], [1.2], [0.8], [0.7]))
    )

    def degrade(x: torch.Tensor) -> torch.Tensor:
        return degrade_photo(x, params)

    net = _net().train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.mse_loss(net(degrade(train)), train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    net.eval()
    with torch.no_grad():
        before = psnr(degrade(held_out), held_out).mean()
        after = psnr(net(degrade(held_out)), held_out).mean()
    assert after > before + 8
