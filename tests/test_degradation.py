"""Tests for operators/degradation.py: bicubic resizing, mod-crop, JPEG, the LR pipeline, YCbCr."""

from __future__ import annotations

import pytest
import torch

from operators.degradation import (
    SRDegradation,
    bicubic_downscale,
    bicubic_upscale,
    jpeg_compress,
    make_lr,
    mod_crop,
    quantize_8bit,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)


def _smooth_image(b: int = 2, c: int = 3, h: int = 48, w: int = 60, seed: int = 0) -> torch.Tensor:
    """A smooth random image in [0, 1] (random noise upsampled), so JPEG and resizing behave naturally."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_and_upscale_shapes(scale: int) -> None:
    hr = mod_crop(_smooth_image(h=50, w=61), scale)
    lr = bicubic_downscale(hr, scale)
    assert lr.shape == (2, 3, hr.shape[-2] // scale, hr.shape[-1] // scale)
    assert bicubic_upscale(lr, scale).shape == hr.shape
    assert bicubic_downscale(hr[0], scale).shape == lr.shape[1:]  # (C, H, W) works too
    assert lr.min() >= 0.0 and lr.max() <= 1.0


def test_mod_crop() -> None:
    img = torch.rand(3, 50, 61)
    assert mod_crop(img, 3).shape == (3, 48, 60)
    assert mod_crop(img, 4).shape == (3, 48, 60)
    assert mod_crop(img, 1).shape == img.shape
    assert torch.equal(mod_crop(img, 3), img[:, :48, :60])  # keeps the top-left corner
    with pytest.raises(ValueError, match="positive int"):
        mod_crop(img, 0)


def test_downscale_needs_mod_crop() -> None:
    with pytest.raises(ValueError, match="mod_crop"):
        bicubic_downscale(torch.rand(1, 3, 50, 50), 3)


def test_downscale_keeps_constant_image_and_antialiases() -> None:
    const = torch.full((1, 3, 24, 24), 0.3)
    assert torch.allclose(bicubic_downscale(const, 3), torch.full((1, 3, 8, 8), 0.3), atol=1e-6)
    # A checkerboard at the Nyquist frequency is averaged away (antialiasing), not aliased.
    checker = (
        (torch.arange(24)[:, None] + torch.arange(24)[None, :]).remainder(2).float().expand(1, 1, 24, 24)
    )
    lr = bicubic_downscale(checker, 2)
    assert (lr - 0.5).abs()[..., 2:-2, 2:-2].max() < 0.05


def test_jpeg_changes_image_keeps_shape() -> None:
    img = _smooth_image()
    out = jpeg_compress(img, quality=20)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert (out - img).abs().mean() > 1e-3
    assert (out - img).abs().mean() < 0.1  # still the same picture
    assert jpeg_compress(img[0], 20).shape == img.shape[1:]
    gray = img[:, :1]
    assert jpeg_compress(gray, 20).shape == gray.shape
    # Higher quality → closer to the input.
    assert (jpeg_compress(img, 95) - img).abs().mean() < (out - img).abs().mean()


def test_jpeg_is_deterministic_and_8bit() -> None:
    img = _smooth_image()
    a, b = jpeg_compress(img, 30), jpeg_compress(img, 30)
    assert torch.equal(a, b)
    assert torch.equal(a, quantize_8bit(a))


@pytest.mark.parametrize("quality", [0, 101, 50.0])
def test_jpeg_quality_is_validated(quality: float) -> None:
    with pytest.raises(ValueError, match="quality"):
        jpeg_compress(torch.rand(3, 16, 16), quality)  # type: ignore[arg-type]


def test_make_lr_and_module() -> None:
    hr = _smooth_image(h=48, w=48)
    lr = make_lr(hr, 3)
    assert lr.shape == (2, 3, 16, 16)
    assert torch.equal(lr, quantize_8bit(bicubic_downscale(hr, 3)))
    assert torch.equal(make_lr(hr, 3, quantize=False), bicubic_downscale(hr, 3))
    lr_jpeg = make_lr(hr, 3, jpeg_quality=10)
    assert lr_jpeg.shape == lr.shape and not torch.equal(lr_jpeg, lr)
    assert torch.equal(SRDegradation(3, jpeg_quality=10)(hr), lr_jpeg)  # deterministic, module = function
    assert list(SRDegradation(2).parameters()) == []


def test_ycbcr_matches_matlab_and_round_trips() -> None:
    rgb = torch.tensor([1.0, 1.0, 1.0]).view(1, 3, 1, 1)
    assert torch.allclose(rgb_to_ycbcr(rgb).flatten(), torch.tensor([235.0, 128.0, 128.0]) / 255, atol=1e-5)
    black = torch.zeros(1, 3, 1, 1)
    assert torch.allclose(rgb_to_ycbcr(black).flatten(), torch.tensor([16.0, 128.0, 128.0]) / 255, atol=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    expected = torch.tensor([16 + 65.481, 128 - 37.797, 128 + 112.0]) / 255
    assert torch.allclose(rgb_to_ycbcr(red).flatten(), expected, atol=1e-6)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-12)
