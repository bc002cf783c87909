"""Tiled SR inference (operators/tiling.py) gives the whole-image output with memory bounded by a tile."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from models.deblock import ARCNNDeblock, DeblockThenSR
from models.espcn import BicubicUpsampler, espcn, espcn_paper
from operators.tiling import receptive_radius, tile_windows, tiled_apply


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_receptive_radius_of_the_sr_nets():
    assert receptive_radius(espcn(3)) == 6  # 5-5-5
    assert receptive_radius(espcn_paper(3)) == 4  # 5-3-3 (Cb/Cr bicubic: +2, not counted)
    assert receptive_radius(DeblockThenSR(ARCNNDeblock(), espcn(4))) == 4 + 3 + 0 + 2 + 6


def test_windows_cover_the_axis_once():
    windows = tile_windows(37, 16, 6)
    assert windows == [(0, 16, 0, 22), (16, 32, 10, 37), (32, 37, 26, 37)]


@pytest.mark.parametrize(("height", "width"), [(40, 40), (37, 50), (16, 9)])
def test_tiled_equals_whole_image_for_espcn(height, width):
    net = espcn(3).eval()
    with torch.no_grad():  # non-zero last layer so every output depends on its whole receptive field
        net.body[-1].weight.normal_(0, 0.05)
    image = torch.rand(1, 3, height, width)
    with torch.no_grad():
        whole = net(image)
    tiled = tiled_apply(net, image, tile=16, overlap=receptive_radius(net), scale=3)
    assert tiled.shape == whole.shape == (1, 3, 3 * height, 3 * width)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiled_equals_whole_image_for_the_paper_net_and_bicubic():
    image = torch.rand(1, 3, 45, 33)
    for net, overlap in ((espcn_paper(4).eval(), 4 + 2), (BicubicUpsampler(4), 2)):
        with torch.no_grad():
            whole = net(image)
        torch.testing.assert_close(tiled_apply(net, image, 12, overlap, 4), whole, atol=1e-5, rtol=0)


def test_too_little_overlap_differs_at_the_seams():
    net = espcn(2).eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        whole = net(image)
    assert (tiled_apply(net, image, 16, 1, 2) - whole).abs().max() > 1e-4


def test_each_call_sees_at_most_one_tile_plus_overlap():
    seen: list[tuple[int, ...]] = []

    def fn(x: Tensor) -> Tensor:
        seen.append(tuple(x.shape))
        return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    image = torch.rand(2, 3, 100, 70)
    out = tiled_apply(fn, image, tile=32, overlap=4, scale=2)
    assert out.shape == (2, 3, 200, 140)
    torch.testing.assert_close(out, fn(image))
    assert len(seen) == 4 * 3 + 1  # 4 × 3 tiles (+ the reference call)
    assert all(h <= 32 + 2 * 4 and w <= 32 + 2 * 4 for _, _, h, w in seen[:-1])


def test_wrong_scale_or_shape_is_an_error():
    with pytest.raises(ValueError, match="expected"):
        tiled_apply(espcn(2).eval(), torch.rand(1, 3, 20, 20), 8, 6, scale=3)
    with pytest.raises(ValueError, match="tile >= 1"):
        tiled_apply(espcn(2).eval(), torch.rand(1, 3, 20, 20), 0, 6, scale=2)
    with pytest.raises(ValueError, match="B, C, H, W"):
        tiled_apply(espcn(2).eval(), torch.rand(3, 20, 20), 8, 6, scale=2)
