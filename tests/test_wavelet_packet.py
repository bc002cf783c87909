"""Full-depth Haar wavelet packet: exactness vs pywt, round trip, orthonormality, module wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import pywt
import torch

from operators.wavelet_packet import (
    HaarWaveletPacket,
    haar_packet_forward,
    haar_packet_inverse,
    haar_packet_matrix,
    packet_paths,
)


def _images(b: int = 2, c: int = 1, n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, n, n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_shapes(levels: int) -> None:
    x = _images(c=3, n=32)
    c = haar_packet_forward(x, levels)
    s = 32 // 2**levels
    assert c.shape == (2, 3 * 4**levels, s, s)
    assert haar_packet_inverse(c, levels).shape == x.shape


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_equals_pywt_wavelet_packet_leaves(levels: int) -> None:
    x = _images(n=16, seed=levels).double()
    coeffs = haar_packet_forward(x, levels)
    for b in range(x.shape[0]):
        wp = pywt.WaveletPacket2D(x[b, 0].numpy(), "haar", mode="periodization", maxlevel=levels)
        nodes = wp.get_level(levels, "natural")
        assert [node.path for node in nodes] == packet_paths(levels)
        ref = np.stack([node.data for node in nodes])
        np.testing.assert_allclose(coeffs[b].numpy(), ref, atol=1e-12)


def test_multichannel_layout_is_per_channel_blocks() -> None:
    x = _images(c=2, n=16)
    c = haar_packet_forward(x, 2)
    assert torch.equal(c[:, :16], haar_packet_forward(x[:, :1], 2))
    assert torch.equal(c[:, 16:], haar_packet_forward(x[:, 1:], 2))


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_round_trip_float32(levels: int) -> None:
    x = _images(b=4, n=32, seed=7)
    rec = haar_packet_inverse(haar_packet_forward(x, levels), levels)
    assert rec.dtype == torch.float32
    assert (rec - x).abs().max().item() < 1e-6 * levels  # one float32 rounding per level and axis


def test_orthonormal() -> None:
    m = haar_packet_matrix(3, dtype=torch.float64)
    assert torch.allclose(m @ m.T, torch.eye(64, dtype=torch.float64), atol=1e-12)
    x = _images(n=32).double()
    c = haar_packet_forward(x, 2)
    assert torch.allclose(c.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1))
    # the approximation band of a constant image carries everything: a = 4 * value for L=2
    const = torch.full((1, 1, 8, 8), 0.5)
    cc = haar_packet_forward(const, 2)
    assert torch.allclose(cc[:, 0], torch.full((1, 2, 2), 2.0))
    assert cc[:, 1:].abs().max() < 1e-6


def test_public_matrix_is_a_copy() -> None:
    m = haar_packet_matrix(1)
    m.zero_()
    assert haar_packet_matrix(1).abs().sum() > 0


def test_differentiable() -> None:
    x = _images(b=1, n=8).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: haar_packet_forward(t, 2), (x,))
    c = haar_packet_forward(x.detach(), 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: haar_packet_inverse(t, 2), (c,))


def test_module_wrapper_has_no_state() -> None:
    wp = HaarWaveletPacket(levels=2)
    assert list(wp.parameters()) == []
    assert wp.state_dict() == {}
    x = _images()
    assert torch.equal(wp(x), haar_packet_forward(x, 2))
    assert torch.allclose(wp.inverse(wp(x)), x, atol=1e-6)
    assert wp.double()(x.double()).dtype == torch.float64


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="divisible"):
        haar_packet_forward(_images(n=28), 3)
    with pytest.raises(ValueError, match="levels"):
        haar_packet_forward(_images(), 0)
    with pytest.raises(ValueError, match="multiple"):
        haar_packet_inverse(torch.zeros(1, 5, 4, 4), 1)
