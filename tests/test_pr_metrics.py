"""Rotation-invariant phase-retrieval metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from metrics.phase_retrieval import METRIC_NAMES, SSIM_WINDOW, psnr_from_mse, rot180_invariant_metrics, ssim
from operators.fourier import rot180


def _images(b: int = 3, n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(seed))


def _const_ssim(mu_x: float, mu_y: float, data_range: float) -> float:
    c1 = (0.01 * data_range) ** 2
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)  # sigma terms cancel (all zero)


def test_constant_images_hand_values() -> None:
    # float64: float32 SSIM of constant images carries ~3e-4 of E[x^2] - E[x]^2 cancellation error
    pred = torch.full((2, 1, 16, 16), 0.25, dtype=torch.float64)
    target = torch.full((2, 1, 16, 16), 0.75, dtype=torch.float64)
    m = rot180_invariant_metrics(pred, target)
    assert set(m) == set(METRIC_NAMES)
    assert all(v.shape == (2,) for v in m.values())
    expected = {
        "mse": 0.25,
        "mae": 0.5,
        "psnr": 10 * math.log10(4.0),
        "ssim": _const_ssim(0.25, 0.75, 1.0),
        "ssim_dr2": _const_ssim(0.25, 0.75, 2.0),
    }
    for name, value in expected.items():
        assert torch.allclose(m[name], torch.tensor(value, dtype=torch.float64), atol=1e-7), name
    assert abs(expected["ssim"] - 0.60006) < 1e-5  # (2*0.1875 + 1e-4) / (0.625 + 1e-4)


def test_rotated_pair_is_perfect() -> None:
    target = _images()
    m = rot180_invariant_metrics(rot180(target), target)
    assert torch.count_nonzero(m["mse"]) == 0 and torch.count_nonzero(m["mae"]) == 0
    assert torch.allclose(m["psnr"], torch.tensor(100.0))  # mse floored at 1e-10
    assert torch.allclose(m["ssim"], torch.ones(3), atol=1e-5)
    assert torch.allclose(m["ssim_dr2"], torch.ones(3), atol=1e-5)


def test_identical_ssim_is_one_and_invariance() -> None:
    target = _images(seed=1)
    noisy = (target + 0.2 * torch.randn(target.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    direct = rot180_invariant_metrics(noisy, target)
    rotated = rot180_invariant_metrics(rot180(noisy), target)
    for name in METRIC_NAMES:
        assert torch.allclose(direct[name], rotated[name], atol=1e-6), name
    assert (direct["ssim"] < 0.9).all()
    assert (direct["ssim_dr2"] > direct["ssim"]).all()  # larger constants -> higher SSIM
    assert torch.allclose(rot180_invariant_metrics(target, target)["ssim"], torch.ones(3), atol=1e-5)


def test_psnr_formula_and_per_sample_values() -> None:
    target = _images(seed=3)
    pred = target.clone()
    pred[0] += 0.1
    pred[1] -= 0.2
    pred[2] = 1.0 - pred[2]
    pred = pred.clamp(0, 1)
    m = rot180_invariant_metrics(pred, target)
    mse_direct = (pred - target).square().flatten(1).mean(1)
    mse_rot = (rot180(pred) - target).square().flatten(1).mean(1)
    assert torch.allclose(m["mse"], torch.minimum(mse_direct, mse_rot))
    assert torch.allclose(m["psnr"], 10 * torch.log10(1.0 / m["mse"]))
    assert len(set(m["mse"].tolist())) == 3


def test_pred_is_clamped_to_unit_range() -> None:
    target = torch.ones(1, 1, 16, 16)
    pred = torch.full((1, 1, 16, 16), 3.0)
    m = rot180_invariant_metrics(pred, target)
    assert m["mse"].item() == 0.0 and m["mae"].item() == 0.0


def test_each_metric_takes_its_own_best_orientation() -> None:
    pred, target = _images(b=8, seed=5), _images(b=8, seed=6)  # unrelated: orientations compete
    m = rot180_invariant_metrics(pred, target)
    for p in (pred, rot180(pred)):
        mse = (p - target).square().flatten(1).mean(1)
        assert (m["mse"] <= mse + 1e-7).all() and (m["psnr"] >= psnr_from_mse(mse) - 1e-4).all()
        assert (m["mae"] <= (p - target).abs().flatten(1).mean(1) + 1e-7).all()
        assert (m["ssim"] >= ssim(p, target) - 1e-6).all()
        assert (m["ssim_dr2"] >= ssim(p, target, data_range=2.0) - 1e-6).all()
    best_ssim = torch.maximum(ssim(pred, target), ssim(rot180(pred), target))
    assert torch.allclose(m["ssim"], best_ssim)


def test_shape_mismatch_raises_and_window_constant() -> None:
    with pytest.raises(ValueError, match="shapes"):
        rot180_invariant_metrics(torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 15))
    assert SSIM_WINDOW == "gaussian 11, sigma 1.5"
