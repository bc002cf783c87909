"""Tests for metrics/color.py: CIEDE2000 against Sharma et al.'s test pairs and scikit-image, PSNR / SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from metrics.color import ciede2000, color_metrics, delta_e00, psnr, quantize_8bit, ssim

# The 34 test pairs of Sharma, Wu, Dalal, "The CIEDE2000 color-difference formula: implementation notes,
# supplementary test data, and mathematical observations", Color Res. Appl. 30(1), 2005, Table 1:
# (L1, a1, b1, L2, a2, b2, ΔE00), ΔE00 to 4 decimals.
SHARMA_PAIRS = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_matches_sharma_test_pairs() -> None:
    data = torch.tensor(SHARMA_PAIRS, dtype=torch.float64)
    ours = ciede2000(data[:, 0:3], data[:, 3:6], dim=-1)
    assert ours.shape == (34,)
    assert torch.allclose(ours, data[:, 6], atol=5e-5)  # the table's rounding
    # symmetric (pairs 7 and 8 are the same pair swapped)
    assert torch.allclose(ciede2000(data[:, 3:6], data[:, 0:3], dim=-1), ours, atol=1e-12)


def test_ciede2000_matches_scikit_image_on_random_colours() -> None:
    g = torch.Generator().manual_seed(0)
    rgb1 = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    rgb2 = (rgb1 + 0.2 * torch.randn(rgb1.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    lab1 = torch.from_numpy(rgb2lab(rgb1.numpy(), channel_axis=1))
    lab2 = torch.from_numpy(rgb2lab(rgb2.numpy(), channel_axis=1))
    ours = ciede2000(lab1, lab2)
    assert ours.shape == (2, 32, 32)
    reference = deltaE_ciede2000(lab1.numpy(), lab2.numpy(), channel_axis=1)
    assert np.abs(ours.numpy() - reference).max() < 1e-9
    # delta_e00 on RGB goes through kornia's rgb_to_lab (D65, 2°), the same conversion as scikit-image's.
    expected_mean = reference.reshape(2, -1).mean(axis=1)
    assert np.allclose(delta_e00(rgb1, rgb2, quantize=False).numpy(), expected_mean, atol=1e-9)


def test_identical_images_score_perfectly() -> None:
    x = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    m = color_metrics(x, x)
    assert set(m) == {"psnr", "ssim", "delta_e00"}
    assert all(v.shape == (3,) and v.dtype == torch.float64 for v in m.values())
    assert torch.all(m["delta_e00"] == 0)
    assert torch.isinf(m["psnr"]).all()
    assert torch.allclose(m["ssim"], torch.ones(3, dtype=torch.float64))


def test_psnr_and_ssim_per_sample() -> None:
    g = torch.Generator().manual_seed(2)
    target = torch.rand(2, 3, 32, 32, generator=g)
    pred = target.clone()
    pred[0] = (target[0] + 0.1).clamp(0, 1)
    pred[1, :, :16] = 1 - target[1, :, :16]
    p = psnr(pred, target)
    t8, p8 = quantize_8bit(target), quantize_8bit(pred)
    for i in range(2):
        mse = (p8[i] - t8[i]).square().mean().item()
        # torchmetrics takes log(10) in float32: 1e-6 dB off the float64 value
        assert p[i].item() == pytest.approx(10 * math.log10(1 / mse), abs=1e-5)
    s = ssim(pred, target)
    assert s.shape == (2,) and s[1] < s[0] < 1
    # torchmetrics' SSIM against scikit-image's Gaussian SSIM (same window, σ, constants).
    ref = structural_similarity(
        p8[0].numpy(), t8[0].numpy(), channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert s[0].item() == pytest.approx(ref, abs=5e-3)


def test_quantisation_and_clamping() -> None:
    target = torch.full((1, 3, 16, 16), 0.5)
    below_half_level = target + 0.4 / 255
    assert torch.isinf(psnr(below_half_level, target))
    assert math.isfinite(psnr(below_half_level, target, quantize=False).item())
    assert torch.isinf(psnr(torch.full_like(target, 1.7), torch.ones_like(target)))  # clamped like a photo
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(target, target[..., :8])
    with pytest.raises(ValueError, match="RGB"):
        delta_e00(target[:, :1], target[:, :1])
