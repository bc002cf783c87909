"""The shared SSIM core (metrics/ssim.py) vs torchmetrics and scikit-image: a convention per argument set."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from datamodules.io import list_images, load_image
from metrics.ssim import ssim, ssim_window
from metrics.super_resolution import rgb_to_y, ssim_y
from operators.degradation import make_lr, mod_crop, quantize_8bit
from tests.conftest import SHARED_DATA

SET5 = SHARED_DATA / "sr" / "Set5"


def _pair(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """A smooth target in [0, 1] and a noisy prediction of it (SSIM well inside (0, 1))."""
    g = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    target = torch.nn.functional.interpolate(torch.rand(b, c, h // 4, w // 4, generator=g), size=(h, w))
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    return pred.to(dtype), target.to(dtype)


@pytest.mark.parametrize("data_range", [1.0, 2.0])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_reflect_border_equals_torchmetrics(data_range: float, dtype: torch.dtype, tol: float) -> None:
    pred, target = _pair((3, 2, 32, 36), seed=0, dtype=dtype)
    ours = ssim(pred, target, data_range, border="reflect")
    ref = structural_similarity_index_measure(
        pred, target, gaussian_kernel=True, sigma=1.5, kernel_size=11, reduction="none", data_range=data_range
    )
    assert isinstance(ref, torch.Tensor)
    assert ours.shape == (3,) and ours.dtype == dtype
    assert torch.allclose(ours, ref, atol=tol, rtol=0)
    assert ours.min() > 0.1 and ours.max() < 0.99


def test_valid_border_is_torchmetrics_map_cropped() -> None:
    """torchmetrics' map reflect-pads by half a window; cropping that half window off leaves "valid" SSIM."""
    pred, target = _pair((2, 1, 40, 44), seed=1)
    _, full = structural_similarity_index_measure(
        pred, target, sigma=1.5, kernel_size=11, reduction="none", data_range=1.0, return_full_image=True
    )
    assert isinstance(full, torch.Tensor)
    ref = full[..., 5:-5, 5:-5].flatten(1).mean(1)
    assert torch.allclose(ssim(pred, target, 1.0, border="valid"), ref, atol=1e-12, rtol=0)


def test_gaussian_valid_equals_skimage() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    pred, target = _pair((1, 1, 33, 29), seed=2)
    ref = metrics.structural_similarity(
        pred[0, 0].numpy(),
        target[0, 0].numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert ssim(pred, target, 1.0).item() == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("data_range", [1.0, 2.0])
def test_skimage_defaults_are_an_argument_choice(data_range: float) -> None:
    """scikit-image's defaults (7×7 uniform window, sample covariance), per channel then averaged."""
    metrics = pytest.importorskip("skimage.metrics")
    pred, target = _pair((2, 3, 28, 28), seed=3)
    ours = ssim(pred, target, data_range, window="uniform", kernel_size=7, sample_covariance=True)
    for i in range(2):
        ref = metrics.structural_similarity(
            pred[i].numpy(), target[i].numpy(), channel_axis=0, data_range=data_range
        )
        assert ours[i].item() == pytest.approx(ref, abs=1e-10)
    population = ssim(pred, target, data_range, window="uniform", kernel_size=7)
    assert not torch.allclose(ours, population)  # the switch changes the value


def test_windows_are_normalised() -> None:
    g = ssim_window("gaussian", 11, 1.5, torch.float64, torch.device("cpu"))
    assert g.sum().item() == pytest.approx(1.0) and g.argmax().item() == 5 and torch.equal(g, g.flip(0))
    assert torch.allclose(
        ssim_window("uniform", 7, 0.0, torch.float64, torch.device("cpu")),
        torch.full((7,), 1 / 7, dtype=torch.float64),
    )


def test_identical_images_and_bad_arguments() -> None:
    pred, target = _pair((2, 1, 16, 16), seed=4)
    assert torch.allclose(ssim(target, target, 1.0), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="kernel_size"):
        ssim(pred, target, 1.0, kernel_size=8)
    with pytest.raises(ValueError, match="border"):
        ssim(pred, target, 1.0, border="same")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        ssim(pred, target, 1.0, window="box")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(pred[..., :10, :], target[..., :10, :], 1.0)
    with pytest.raises(ValueError, match="shapes"):
        ssim(pred, target[..., :15], 1.0)


@pytest.mark.shared("data/sr/Set5")
def test_ssim_y_equals_skimage_on_a_real_bicubic_image() -> None:
    """BasicSR's Y-SSIM (8-bit, Y in 0..255, border = scale, valid) on Set5's first image, bicubic ×3."""
    metrics = pytest.importorskip("skimage.metrics")
    scale = 3
    hr = mod_crop(load_image(list_images(SET5)[0]), scale).unsqueeze(0)
    sr = torch.nn.functional.interpolate(
        make_lr(hr, scale), scale_factor=scale, mode="bicubic", antialias=True
    )
    y_sr, y_hr = (
        rgb_to_y(quantize_8bit(x.double()))[0, 0, scale:-scale, scale:-scale] * 255 for x in (sr, hr)
    )
    ref = metrics.structural_similarity(
        y_sr.numpy(),
        y_hr.numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim_y(sr, hr, crop_border=scale).item() == pytest.approx(ref, abs=1e-10)
