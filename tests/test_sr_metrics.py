"""Tests for metrics/super_resolution.py against hand-computed values, a numpy SSIM and published numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datamodules.io import list_images, load_image
from metrics.super_resolution import psnr_rgb, psnr_y, quantize_8bit, rgb_to_y, sr_metrics, ssim_y
from operators.degradation import bicubic_downscale, bicubic_upscale, mod_crop
from tests.conftest import SHARED_DATA

SET5 = SHARED_DATA / "sr" / "Set5"


def test_rgb_to_y_and_quantize() -> None:
    x = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1)
    expected = (16 + 65.481 * 0.2 + 128.553 * 0.5 + 24.966 * 0.8) / 255
    assert rgb_to_y(x).shape == (1, 1, 1, 1)
    assert rgb_to_y(x).item() == pytest.approx(expected, abs=1e-6)
    q = quantize_8bit(torch.tensor([-0.1, 0.5, 0.1234, 1.3]))
    assert torch.allclose(q, torch.tensor([0.0, 128 / 255, 31 / 255, 1.0]))


def test_psnr_y_hand_computed() -> None:
    target = torch.zeros(1, 3, 2, 2)
    pred = target.clone()
    pred[0, 0, 0, 0] = 1.0  # one pure-red pixel: ΔY = 65.481 (0..255) on 1 of 4 pixels
    expected = 10 * math.log10(255**2 / (65.481**2 / 4))
    assert psnr_y(pred, target, crop_border=0).item() == pytest.approx(expected, abs=1e-9)
    expected_rgb = 10 * math.log10(255**2 / (255**2 / 12))  # 1 of 12 values off by 255
    assert psnr_rgb(pred, target, crop_border=0).item() == pytest.approx(expected_rgb, abs=1e-9)


def test_psnr_is_per_sample_quantised_and_inf_when_equal() -> None:
    target = torch.rand(3, 3, 16, 16)
    pred = target + 0.4 / 255  # below half a grey level: vanishes after 8-bit rounding (mostly)
    pred[1] = target[1] + 0.05
    values = psnr_y(pred, target, crop_border=2)
    assert values.shape == (3,) and values.dtype == torch.float64
    assert values[1] < values[0] and values[1] < values[2]
    assert torch.isinf(psnr_y(target, target, 0)).all()


def test_crop_border_removes_border_errors() -> None:
    target = torch.rand(1, 3, 20, 20)
    pred = target.clone()
    pred[..., :3, :] = 1 - pred[..., :3, :]  # corrupt the 3 top rows
    assert math.isfinite(psnr_y(pred, target, crop_border=2).item())
    assert math.isinf(psnr_y(pred, target, crop_border=3).item())
    assert ssim_y(pred, target, crop_border=3).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="crop_border"):
        psnr_y(pred, target, crop_border=10)


def _ssim_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """Reference SSIM (Wang et al. 2004) on 0..255 arrays: Gaussian 11×11 σ=1.5 window, valid windows only."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win_a = np.lib.stride_tricks.sliding_window_view(a, (11, 11))
    win_b = np.lib.stride_tricks.sliding_window_view(b, (11, 11))
    mu_a, mu_b = (win_a * w).sum((-1, -2)), (win_b * w).sum((-1, -2))
    var_a = (win_a**2 * w).sum((-1, -2)) - mu_a**2
    var_b = (win_b**2 * w).sum((-1, -2)) - mu_b**2
    cov = (win_a * win_b * w).sum((-1, -2)) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def _y255(x: torch.Tensor) -> np.ndarray:
    q = (x.double().clamp(0, 1) * 255).round() / 255
    return (16 + 65.481 * q[0] + 128.553 * q[1] + 24.966 * q[2]).numpy()


def test_ssim_y_matches_numpy_reference() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.nn.functional.interpolate(
        torch.rand(2, 3, 8, 8, generator=g), size=(30, 34), mode="bilinear"
    )
    pred = (target + 0.08 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    values = ssim_y(pred, target, crop_border=2)
    assert values.shape == (2,)
    for i in range(2):
        ref = _ssim_numpy(_y255(pred[i])[2:-2, 2:-2], _y255(target[i])[2:-2, 2:-2])
        assert values[i].item() == pytest.approx(ref, abs=1e-10)
    assert values.min() > 0.0 and values.max() < 1.0
    assert torch.allclose(ssim_y(target, target, 0), torch.ones(2, dtype=torch.float64))


def test_ssim_y_matches_skimage() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 24, 24, generator=g)
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    ref = metrics.structural_similarity(
        _y255(pred[0]),
        _y255(target[0]),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim_y(pred, target, 0).item() == pytest.approx(ref, abs=1e-8)


def test_sr_metrics_keys_and_validation() -> None:
    x = torch.rand(2, 3, 16, 16)
    out = sr_metrics(x, (x + 0.02).clamp(0, 1), crop_border=1)
    assert set(out) == {"psnr_y", "ssim_y", "psnr_rgb"}
    assert all(v.shape == (2,) for v in out.values())
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_y(x, x[..., :15], 0)


@pytest.mark.shared("data/sr/Set5")
@pytest.mark.parametrize(("scale", "published"), [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_set5_bicubic_matches_published(scale: int, published: float) -> None:
    """Bicubic Set5 Y-PSNR (crop = scale) vs. the published Matlab bicubic rows (e.g. SRCNN/VDSR tables)."""
    values = []
    for path in list_images(SET5):
        hr = mod_crop(load_image(path), scale).unsqueeze(0)
        lr = quantize_8bit(bicubic_downscale(hr, scale))
        values.append(psnr_y(bicubic_upscale(lr, scale), hr, crop_border=scale).item())
    assert sum(values) / len(values) == pytest.approx(published, abs=0.15)
