"""Rotation-invariant phase-retrieval metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from metrics.phase_retrieval import (
    METRIC_NAMES,
    SSIM_WINDOW,
    PaperPSNR,
    psnr_from_mse,
    psnr_paper_from_mse,
    rot180_invariant_metrics,
    ssim,
    ssim_paper,
)
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
        "ssim_paper": _const_ssim(0.25, 0.75, 2.0),
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


def _skimage_ssim_dr2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    metrics = pytest.importorskip("skimage.metrics")
    values = [
        metrics.structural_similarity(t[0].numpy(), p[0].numpy(), data_range=2)
        for p, t in zip(pred.double(), target.double(), strict=True)
    ]
    return torch.tensor(values, dtype=torch.float64)


def test_ssim_paper_equals_skimage_on_random_images() -> None:
    target = _images(b=4, n=32, seed=7).double()
    pred = (
        target
        + 0.3 * torch.randn(target.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    ).clamp(0, 1)
    assert torch.allclose(ssim_paper(pred, target), _skimage_ssim_dr2(pred, target), atol=1e-10)
    unrelated = _images(b=4, n=32, seed=9).double()
    assert torch.allclose(ssim_paper(unrelated, target), _skimage_ssim_dr2(unrelated, target), atol=1e-10)


def test_ssim_paper_equals_skimage_on_real_images() -> None:
    data = pytest.importorskip("skimage.data")
    transform = pytest.importorskip("skimage.transform")
    photos = [data.camera(), data.coins(), data.moon()]
    target = torch.stack(
        [torch.from_numpy(transform.resize(p, (32, 32), anti_aliasing=True)) for p in photos]
    )
    target = target[:, None].double()  # in [0, 1]: resize returns floats scaled to 0..1
    blurred = torch.nn.functional.avg_pool2d(target, 3, stride=1, padding=1, count_include_pad=False)
    assert torch.allclose(ssim_paper(blurred, target), _skimage_ssim_dr2(blurred, target), atol=1e-10)
    m = rot180_invariant_metrics(rot180(blurred), target)  # the metric also undoes the rotation
    assert torch.allclose(m["ssim_paper"], _skimage_ssim_dr2(blurred, target), atol=1e-10)


def test_psnr_paper_hand_computation_and_table_v() -> None:
    # two images with MSE 0.0100 and 0.0056 (constant offsets 0.1 and sqrt(0.0056)); split mean 0.0078
    target = torch.full((2, 1, 16, 16), 0.5, dtype=torch.float64)
    pred = target + torch.tensor([0.1, 0.0056**0.5], dtype=torch.float64)[:, None, None, None]
    metric = PaperPSNR()
    metric.update(pred[:1], target[:1])
    metric.update(pred[1:], target[1:])
    assert abs(float(metric.compute()) - 20 * math.log10(1 / 0.0078)) < 1e-4  # 42.1581
    # Table V (Fashion-MNIST, PR-DAD Haar): MSE 0.0078 beside PSNR 42.1862 = 20 log10(1 / 0.007775)
    assert abs(float(psnr_paper_from_mse(torch.tensor(0.007775, dtype=torch.float64))) - 42.1862) < 1e-3
    # Table II (MNIST, PR-DAD AE): MSE 0.0100 beside PSNR 40.0208; an average of per-image values is not it
    assert abs(float(psnr_paper_from_mse(torch.tensor(0.0100))) - 40.0208) < 0.03
    per_image_mean = (20 * torch.log10(1 / torch.tensor([0.0100, 0.0056]))).mean()
    assert per_image_mean > float(metric.compute()) + 0.1


def test_psnr_paper_is_rotation_invariant() -> None:
    target = _images(b=3, n=16, seed=11)
    pred = (target + 0.05).clamp(0, 1)
    direct, rotated = PaperPSNR(), PaperPSNR()
    direct.update(pred, target)
    rotated.update(rot180(pred), target)
    assert torch.allclose(direct.compute(), rotated.compute())
    mse = rot180_invariant_metrics(pred, target)["mse"].double().mean()
    assert torch.allclose(direct.compute().double(), 20 * torch.log10(1 / mse), atol=1e-5)
