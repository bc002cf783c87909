"""Fourier-magnitude operator: padding, invariances, Parseval, noise models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from operators.fourier import (
    FourierMagnitude,
    combine_magnitude_phase,
    crop_center,
    fourier_magnitude,
    pad_image,
    rot180,
    support_mask,
)


def _images(b: int = 3, n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(seed))


def test_pad_constant_and_crop_roundtrip() -> None:
    x = _images()
    xp = pad_image(x, 4)
    assert xp.shape == (3, 1, 20, 20)
    assert torch.equal(crop_center(xp, 12), x)
    border = xp.clone()
    border[..., 4:16, 4:16] = 0
    assert border.abs().sum() == 0


def test_pad_edge_replicates_border() -> None:
    x = _images()
    xp = pad_image(x, 2, mode="edge")
    assert torch.equal(xp[..., 0, 2:-2], x[..., 0, :])
    assert torch.equal(xp[..., 2:-2, -1], x[..., :, -1])
    assert torch.equal(xp[..., 0, 0], x[..., 0, 0])
    assert torch.equal(crop_center(xp, 12), x)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="constant"):
        pad_image(_images(), 2, mode="reflect")
    with pytest.raises(ValueError, match=">= 0"):
        pad_image(_images(), -1)
    with pytest.raises(ValueError, match="size"):
        crop_center(_images(), 13)
    with pytest.raises(ValueError, match="gaussian"):
        FourierMagnitude(2, noise="speckle")
    with pytest.raises(ValueError, match="photons"):
        FourierMagnitude(2, noise="poisson")
    with pytest.raises(ValueError, match="pad_mode"):
        FourierMagnitude(2, pad_mode="wrap")


def test_fourier_magnitude_matches_numpy_ortho_fft() -> None:
    x = _images(b=2, n=8).double()
    ref = np.abs(np.fft.fft2(x.numpy())) / 8.0  # ortho = 1/sqrt(8*8)
    np.testing.assert_allclose(fourier_magnitude(x).numpy(), ref, atol=1e-12)


def test_parseval_orthonormal() -> None:
    x = pad_image(_images(n=16), 8).double()
    assert torch.allclose(torch.fft.fft2(x, norm="ortho").flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    y = FourierMagnitude(pad=8)(_images(n=16).double())
    assert torch.allclose(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))


def test_rot180_invariance() -> None:
    x = _images(n=16)
    op = FourierMagnitude(pad=4)
    assert not torch.allclose(rot180(x), x)
    assert torch.allclose(op(rot180(x)), op(x), atol=1e-5)
    # also on the padded grid directly (rot180 commutes with symmetric padding)
    assert torch.equal(pad_image(rot180(x), 4), rot180(pad_image(x, 4)))
    # but not invariant to a transpose (|F x^T| = |F x|^T): the test can fail
    assert not torch.allclose(op(x.transpose(-1, -2)), op(x), atol=1e-3)


@pytest.mark.parametrize("shift", [(1, 0), (3, -5), (7, 7)])
def test_circular_shift_invariance_on_padded_grid(shift: tuple[int, int]) -> None:
    xp = pad_image(_images(n=16), 8)
    shifted = torch.roll(xp, shifts=shift, dims=(-2, -1))
    assert torch.allclose(fourier_magnitude(shifted), fourier_magnitude(xp), atol=1e-5)


def test_centro_symmetry_of_real_image_magnitudes() -> None:
    y = fourier_magnitude(pad_image(_images(n=10), 3))
    flipped = torch.roll(torch.flip(y, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # y[-k]
    assert torch.allclose(y, flipped, atol=1e-5)


def test_support_mask() -> None:
    op = FourierMagnitude(pad=3)
    s = op.support(10)
    assert s.shape == (16, 16) and s.dtype == torch.bool
    assert int(s.sum()) == 100
    assert s[3:13, 3:13].all() and not s[:3].any() and not s[:, 13:].any()
    assert torch.equal(s, support_mask(10, 3))
    assert op.measured_size(10) == 16


def test_measure_padded_equals_forward() -> None:
    x = _images()
    op = FourierMagnitude(pad=2)
    assert torch.equal(op.measure_padded(pad_image(x, 2)), op(x))


def test_gaussian_noise_std_nonneg_and_seeded() -> None:
    x = _images(b=8, n=16, seed=2)
    op = FourierMagnitude(pad=8, noise="gaussian", noise_std=0.01)
    clean = FourierMagnitude(pad=8)(x)
    y1 = op(x, generator=torch.Generator().manual_seed(1))
    y2 = op(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(y1, y2)
    assert (y1 >= 0).all()
    far_from_zero = clean > 0.05  # 5 sigma: clamping is negligible there
    assert far_from_zero.float().mean() > 0.5
    diff = (y1 - clean)[far_from_zero]
    assert abs(diff.std().item() - 0.01) < 0.001
    assert abs(diff.mean().item()) < 0.001


def test_poisson_noise_unbiased_intensity_and_photon_scaling() -> None:
    x = _images(b=64, n=16, seed=3)
    clean = FourierMagnitude(pad=8)(x)
    g = torch.Generator().manual_seed(0)
    errs = []
    for photons in (10.0, 1000.0):
        y = FourierMagnitude(pad=8, noise="poisson", photons=photons)(x, generator=g)
        assert (y >= 0).all()
        # E[counts] = rate -> mean intensity preserved (per-sample mean over 576 pixels, averaged over 64)
        ratio = y.square().flatten(1).mean(1) / clean.square().flatten(1).mean(1)
        assert abs(ratio.mean().item() - 1.0) < 0.02
        errs.append(((y - clean).norm() / clean.norm()).item())
    assert errs[1] < errs[0] / 5  # 100x more photons -> ~10x less relative noise


def test_combine_magnitude_phase_follows_the_phase_donor() -> None:
    """Fig. 1 of the lecture: an image's own magnitude and phase give it back; a swapped pair looks like the
    phase donor (correlates with it more than with the magnitude donor)."""
    data = pytest.importorskip("skimage.data")
    a = torch.from_numpy(data.camera()[::8, ::8].astype(np.float64) / 255)[None, None]
    b = torch.from_numpy(data.astronaut()[::8, ::8, 0].astype(np.float64) / 255)[None, None]
    torch.testing.assert_close(combine_magnitude_phase(a, a), a)

    def corr(u: torch.Tensor, v: torch.Tensor) -> float:
        u, v = u.flatten() - u.mean(), v.flatten() - v.mean()
        return float(u @ v / (u.norm() * v.norm()))

    swapped = combine_magnitude_phase(a, b)  # a's magnitude, b's phase
    assert corr(swapped, b) > 0.5 and corr(swapped, b) > corr(swapped, a) + 0.3
    with pytest.raises(ValueError, match="shapes"):
        combine_magnitude_phase(a, b[..., :-1])
