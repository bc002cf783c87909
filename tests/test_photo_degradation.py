"""Tests for operators/photo_degradation.py: each step and its inverse, the chain, the seeded random draw."""

from __future__ import annotations

import pytest
import torch

from operators.photo_degradation import (
    PhotoDegradationParams,
    RandomPhotoDegradation,
    adjust_contrast,
    adjust_exposure,
    adjust_gamma,
    adjust_saturation,
    adjust_white_balance,
    degrade_levels,
    degrade_photo,
    linear_to_srgb,
    luma,
    restore_photo,
    srgb_to_linear,
    temperature_tint_gains,
)


def _photo(b: int = 2, h: int = 24, w: int = 32, lo: float = 0.15, hi: float = 0.75, seed: int = 0):
    """A smooth colourful image with values in [lo, hi] (away from clipping), float64."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, h // 4, w // 4, generator=g, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return lo + (hi - lo) * x


# Each degradation with a parameter per image (B = 2) and the parameter of its inverse.
_T = torch.tensor
_GAINS = _T([[1.2, 1.0, 0.8], [0.7, 1.1, 1.3]])
ROUND_TRIPS = {
    "exposure": (adjust_exposure, _T([0.4, -1.2]), _T([-0.4, 1.2])),
    "white_balance": (adjust_white_balance, _GAINS, 1 / _GAINS),
    "gamma": (adjust_gamma, _T([0.6, 1.7]), 1 / _T([0.6, 1.7])),
    "contrast_mean": (adjust_contrast, _T([0.6, 1.3]), 1 / _T([0.6, 1.3])),
    "contrast_mid": (lambda x, c: adjust_contrast(x, c, pivot=0.5), 1.3, 1 / 1.3),
    "saturation": (adjust_saturation, _T([0.3, 1.4]), 1 / _T([0.3, 1.4])),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_each_degradation_inverts_exactly(name: str) -> None:
    step, param, inverse_param = ROUND_TRIPS[name]
    x = _photo()
    y = step(x, param)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert (y - x).abs().max() > 0.02  # it does something
    assert torch.allclose(step(y, inverse_param), x, atol=1e-10)


def test_steps_against_hand_computation() -> None:
    x = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64).view(1, 3, 1, 1)
    # sRGB: 0.5 → ((0.5 + 0.055) / 1.055)^2.4 = 0.21404 in linear light; one stop up and re-encoded.
    lin = ((x + 0.055) / 1.055) ** 2.4
    expected = 1.055 * (2 * lin) ** (1 / 2.4) - 0.055
    assert torch.allclose(adjust_exposure(x, 1.0), expected, atol=1e-12)
    assert torch.allclose(srgb_to_linear(x), lin, atol=1e-12)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    assert torch.allclose(adjust_gamma(x, 2.0), x**2)
    y = 0.2126 * 0.2 + 0.7152 * 0.5 + 0.0722 * 0.8
    assert luma(x).item() == pytest.approx(y)
    assert torch.allclose(adjust_saturation(x, 0.0), torch.full_like(x, y))
    assert torch.allclose(adjust_contrast(x, 0.5, pivot=0.5), 0.5 + 0.5 * (x - 0.5))
    assert torch.allclose(adjust_contrast(x, 2.0), y + 2.0 * (x - y))  # pivot = mean luma (one pixel)


def test_cast_gains_keep_grey_luminance() -> None:
    gains = temperature_tint_gains(torch.tensor([0.0, 0.8, -0.8]), torch.tensor([0.0, 0.0, 0.3]))
    assert gains.shape == (3, 3)
    assert torch.allclose(gains[0], torch.ones(3))
    w = torch.tensor([0.2126, 0.7152, 0.0722])
    assert torch.allclose((gains * w).sum(dim=1), torch.ones(3))
    assert gains[1, 0] > 1 > gains[1, 2]  # warm: more red, less blue
    assert gains[1, 0] / gains[1, 2] == pytest.approx(2**0.8)
    assert gains[2, 2] > gains[2, 0] and gains[2, 1] > gains[2, 0]  # cool and green


def test_chain_inverts_exactly_without_clipping() -> None:
    x = _photo()
    params = PhotoDegradationParams(
        ev=torch.tensor([1.0, -1.5]),
        gains=temperature_tint_gains(torch.tensor([0.5, -0.6]), torch.tensor([0.1, -0.2])),
        gamma=torch.tensor([0.8, 1.3]),
        contrast=torch.tensor([1.2, 0.7]),
        saturation=torch.tensor([1.4, 0.6]),
    )
    y = degrade_photo(x, params, clip=False, sensor_clip=False)
    assert (y - x).abs().mean() > 0.05
    assert torch.allclose(restore_photo(y, params), x, atol=1e-9)
    assert torch.allclose(degrade_photo(x, PhotoDegradationParams.identity(2)), x, atol=1e-12)


@pytest.mark.parametrize("pivot", [None, 0.5])
def test_the_fused_contrast_and_saturation_equal_the_two_steps(pivot) -> None:
    x = _photo(lo=-0.2, hi=1.3)  # beyond [0, 1]: nothing clips without clip=True
    contrast, saturation = torch.tensor([1.3, 0.6]), torch.tensor([0.5, 1.7])
    params = PhotoDegradationParams(torch.zeros(2), torch.ones(2, 3), torch.ones(2), contrast, saturation)
    steps = adjust_saturation(adjust_contrast(x, contrast, pivot), saturation)
    # ev 0, gains 1, gamma 1: the per-channel steps are the identity, what remains is the fused map
    fused = degrade_photo(x, params, clip=False, sensor_clip=False, contrast_pivot=pivot)
    assert torch.allclose(fused, steps, atol=1e-12)


def test_clipping_makes_the_inverse_inexact_only_where_it_clips() -> None:
    x = _photo(lo=0.05, hi=0.95)
    params = PhotoDegradationParams.identity(2)
    params = PhotoDegradationParams(
        torch.tensor([1.5, 1.5]), params.gains, params.gamma, params.contrast, params.saturation
    )
    y = degrade_photo(x, params)  # +1.5 EV: the bright pixels saturate
    assert y.max() <= 1.0 and y.min() >= 0.0
    back = restore_photo(y, params)
    clipped = y >= 1.0 - 1e-9  # the sRGB encoding of 1.0 is 1 - 1e-16 in float64
    assert clipped.any() and (~clipped).any()
    assert torch.allclose(back[~clipped], x[~clipped], atol=1e-9)
    # Highlights come back as the clip level, 2^-1.5 in linear light: darker than they were, information lost.
    assert torch.allclose(
        back[clipped], linear_to_srgb(torch.full((1, 3, 1, 1), 2**-1.5, dtype=x.dtype)).flatten()[0]
    )
    assert (back[clipped] <= x[clipped] + 1e-9).all() and (x[clipped] - back[clipped]).max() > 0.2


def test_random_draws_repeat_under_a_seed_and_stay_in_range() -> None:
    deg = RandomPhotoDegradation()
    x = _photo(b=4).float()
    a = deg(x, generator=torch.Generator().manual_seed(7))
    b = deg(x, generator=torch.Generator().manual_seed(7))
    c = deg(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.min() >= 0 and a.max() <= 1 and a.shape == x.shape
    p = deg.sample_params(1000, torch.Generator().manual_seed(0))
    assert p.ev.min() >= -1.5 and p.ev.max() <= 1.5 and p.ev.std() > 0.5
    assert p.gamma.min() >= 0.7 and p.gamma.max() <= 1.4
    assert p.saturation.min() >= 0.6 and p.saturation.max() <= 1.5
    assert p.gains.shape == (1000, 3)
    # A fixed range fixes the parameter and leaves the other draws unchanged.
    fixed = RandomPhotoDegradation(exposure_ev=(0.5, 0.5)).sample_params(
        1000, torch.Generator().manual_seed(0)
    )
    assert torch.all(fixed.ev == 0.5) and torch.equal(fixed.gamma, p.gamma)


@pytest.mark.parametrize("pivot", [None, 0.5])
def test_the_per_level_tables_give_degrade_photo_of_the_8_bit_photo(pivot) -> None:
    levels = torch.randint(
        0, 256, (3, 3, 20, 28), generator=torch.Generator().manual_seed(3), dtype=torch.uint8
    )
    levels[0, :, 0, :2] = torch.tensor([0, 255], dtype=torch.uint8)  # both ends of the table
    degradation = RandomPhotoDegradation(exposure_ev=(-1.5, 1.5), contrast_pivot=pivot)
    params = degradation.sample_params(3, torch.Generator().manual_seed(4))
    expected = degrade_photo(levels.float() / 255.0, params, contrast_pivot=pivot)
    torch.testing.assert_close(
        degrade_levels(levels, params, contrast_pivot=pivot), expected, atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        degradation.apply(levels, params), expected, atol=1e-6, rtol=0
    )  # uint8 → tables
    with pytest.raises(ValueError, match="uint8"):
        degrade_levels(levels.float(), params)


def test_gradients_flow_to_image_and_parameters() -> None:
    x = _photo(b=1, h=4, w=4).requires_grad_(True)
    ev = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor([1.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, e, g: adjust_gamma(adjust_exposure(x, e), g), (x, ev, gamma))
    zero = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    adjust_gamma(zero, 0.5).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="gamma must be a range"):
        RandomPhotoDegradation(gamma=(0.0, 1.2))
    with pytest.raises(ValueError, match="exposure_ev"):
        RandomPhotoDegradation(exposure_ev=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        adjust_exposure(torch.rand(1, 1, 4, 4), 1.0)
    with pytest.raises(ValueError, match="gains"):
        adjust_white_balance(torch.rand(2, 3, 4, 4), torch.ones(2, 2))
