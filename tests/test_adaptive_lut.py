"""Tests for models/adaptive_lut.py: the trilinear lookup against hand computation, identity, regularisers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from metrics.color import psnr
from models.adaptive_lut import (
    AdaptiveLUT,
    HistogramBranch,
    ThumbnailCNN,
    adaptive_lut,
    adaptive_lut_small,
    apply_lut,
    colour_histogram,
    fuse_luts,
    identity_lut,
    lut_monotonicity,
    lut_to_pil_filter,
    lut_tv,
    thumbnail,
)
from operators.photo_degradation import adjust_exposure


def _random_lut(size: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, size, size, size, generator=g, dtype=torch.float64)


def _trilinear_by_hand(lut: torch.Tensor, rgb: tuple[float, float, float]) -> torch.Tensor:
    """The 8-corner formula written out for one colour: lut[c, b, g, r], nodes at i / (D - 1)."""
    d = lut.shape[-1]
    u = [v * (d - 1) for v in rgb]
    i0 = [min(int(np.floor(v)), d - 2) for v in u]
    f = [v - i for v, i in zip(u, i0, strict=True)]
    out = torch.zeros(3, dtype=lut.dtype)
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                w = (f[0] if dr else 1 - f[0]) * (f[1] if dg else 1 - f[1]) * (f[2] if db else 1 - f[2])
                out += w * lut[:, i0[2] + db, i0[1] + dg, i0[0] + dr]
    return out


def test_identity_lut_layout() -> None:
    lut = identity_lut(5)
    assert lut.shape == (3, 5, 5, 5)
    # lut[c, b, g, r]: node (r, g, b) = (1, 2, 3) / 4 is at [:, 3, 2, 1]
    assert torch.allclose(lut[:, 3, 2, 1], torch.tensor([0.25, 0.5, 0.75]))


def test_identity_lut_leaves_image_unchanged() -> None:
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(1))
    for size in (2, 17, 33):
        assert torch.allclose(apply_lut(x, identity_lut(size)), x, atol=1e-6)


def test_lookup_at_grid_points_returns_the_node() -> None:
    lut = _random_lut(5)
    idx = torch.tensor([[0, 0, 0], [4, 4, 4], [1, 2, 3], [3, 0, 4], [2, 4, 1]])  # (r, g, b) node indices
    x = (idx.T.double() / 4).view(1, 3, 1, -1)
    out = apply_lut(x, lut)[0, :, 0]
    expected = torch.stack([lut[:, b, g, r] for r, g, b in idx.tolist()], dim=1)
    assert torch.allclose(out, expected, atol=1e-12)


def test_lookup_at_midpoints_and_inside_matches_hand_computation() -> None:
    lut = _random_lut(5)
    # midpoints of an edge, a face and a cell, and two arbitrary colours
    colours = [
        (0.125, 0.5, 0.5),
        (0.125, 0.375, 0.75),
        (0.125, 0.375, 0.625),
        (0.3, 0.91, 0.07),
        (1.0, 0.6, 0.0),
    ]
    x = torch.tensor(colours, dtype=torch.float64).T.reshape(1, 3, 1, -1)
    out = apply_lut(x, lut)[0, :, 0]
    for k, rgb in enumerate(colours):
        assert torch.allclose(out[:, k], _trilinear_by_hand(lut, rgb), atol=1e-12)
    # A cell centre is the mean of its 8 corners.
    assert torch.allclose(out[:, 2], lut[:, 2:4, 1:3, 0:2].reshape(3, -1).mean(dim=1), atol=1e-12)


def test_lookup_per_image_luts_chunks_and_clamping() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 7, 11, generator=g, dtype=torch.float64)
    luts = torch.stack([_random_lut(4, s) for s in range(3)])
    out = apply_lut(x, luts)
    for i in range(3):
        assert torch.allclose(out[i], apply_lut(x[i : i + 1], luts[i])[0], atol=1e-12)
    for chunks in (1, 2, 5, 77):  # 77 = all pixels; 5 does not divide 77 (padding)
        assert torch.allclose(apply_lut(x, luts, chunks=chunks), out, atol=1e-12)
    assert torch.allclose(apply_lut(x * 3 - 1, luts), apply_lut((x * 3 - 1).clamp(0, 1), luts), atol=1e-12)
    with pytest.raises(ValueError, match="LUTs for a batch"):
        apply_lut(x, luts[:2])


def test_lookup_gradients(single_thread: None) -> None:
    lut = _random_lut(2).requires_grad_(True)
    x = (0.05 + 0.9 * torch.rand(1, 3, 1, 3, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, lut: apply_lut(x, lut, chunks=2), (x, lut), fast_mode=True)


def test_fuse_luts() -> None:
    basis = torch.stack([identity_lut(3), torch.ones(3, 3, 3, 3)])
    fused = fuse_luts(torch.tensor([[1.0, 0.0], [0.5, 0.2]]), basis)
    assert fused.shape == (2, 3, 3, 3, 3)
    assert torch.allclose(fused[0], identity_lut(3))
    assert torch.allclose(fused[1], 0.5 * identity_lut(3) + 0.2)


def test_regularisers() -> None:
    for d in (3, 17, 33):
        ident = identity_lut(d, dtype=torch.float64)
        assert lut_monotonicity(ident) == 0
        assert lut_tv(ident - ident) == 0
        assert lut_tv(torch.full((3, d, d, d), 0.3)) == 0
        assert lut_tv(ident).item() == pytest.approx((d + 1) / (d - 1) ** 3)  # the paper's TV of the identity
    inverted = 1 - identity_lut(5)
    assert lut_monotonicity(inverted) > 0
    assert lut_tv(_random_lut(5)) > lut_tv(identity_lut(5, dtype=torch.float64))


def test_model_init_is_identity_and_regularisers_vanish(single_thread: None) -> None:
    torch.manual_seed(0)
    model = AdaptiveLUT(n_luts=3, lut_size=9).eval()
    x = torch.rand(2, 3, 40, 60)
    y, w = model.forward_with_weights(x)
    assert y.shape == x.shape and w.shape == (2, 3)
    # Only the identity basis is non-zero at init: the output is w_1 · x.
    assert torch.allclose(y, w[:, :1, None, None] * x, atol=1e-5)
    reg = model.regularisation(w)
    assert reg["tv"] == 0 and reg["monotonicity"] == 0
    assert reg["total"].item() == pytest.approx(1e-4 * w.square().mean().item())
    paper = AdaptiveLUT(n_luts=3, lut_size=9, smooth_from_init=False).regularisation(w)
    assert paper["tv"].item() == pytest.approx(10 / 8**3)
    # w_1 = 1 exactly; w_2, w_3 small and different (so their zero LUTs and heads learn different things)
    assert torch.equal(w[:, 0], torch.ones(2)) and (w[:, 1:].abs() < 0.1).all()
    assert not torch.allclose(w[:, 1], w[:, 2]) and torch.allclose(y, x, atol=1e-5)
    # The paper's head (Xavier weights) starts at a random brightness per image instead.
    w_paper = AdaptiveLUT(n_luts=3, lut_size=9, head_init="paper").eval().predict_weights(x)
    assert (w_paper - 1).abs().max() > 0.05


def test_model_sizes_and_gradients(single_thread: None) -> None:
    for builder, params in ((adaptive_lut, 593_516), (adaptive_lut_small, 314_300)):
        assert sum(p.numel() for p in builder().parameters()) == params < 1_000_000
    model = AdaptiveLUT(lut_size=5, thumb_size=64, widths=(4, 4, 4, 4, 4))
    y, w = model.forward_with_weights(torch.rand(2, 3, 30, 50))
    ((y - 0.5).square().mean() + model.regularisation(w)["total"]).backward()
    assert model.basis.grad is not None and model.basis.grad.abs().sum() > 0
    assert model.backbone.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiple of 32"):
        ThumbnailCNN(3, thumb_size=100)


def test_the_mobilenet_encoder_starts_as_the_identity_and_trains(single_thread: None) -> None:
    model = AdaptiveLUT(lut_size=5, thumb_size=64, histogram_bins=8, encoder="mobilenet_v2").eval()
    trunk = model.backbone.body[0]
    assert len(trunk.net.blocks) == 13 and model.backbone.head.in_channels == 96
    x = torch.rand(2, 3, 50, 70)
    assert trunk(thumbnail(x, 64)).shape == (2, 96, 4, 4)  # stride 16
    y, w = model.forward_with_weights(x)
    assert torch.allclose(y, x, atol=1e-5) and torch.equal(w[:, 0], torch.ones(2))
    ((y - 0.5).square().mean() + w[:, 1:].sum()).backward()
    assert trunk.net.stem.conv.weight.grad.abs().sum() > 0  # fine-tuned, not frozen
    with pytest.raises(ValueError, match="encoder"):
        ThumbnailCNN(3, encoder="resnet")


def test_colour_histogram_and_its_branch() -> None:
    x = torch.zeros(2, 3, 4, 5)
    x[0, 0] = 0.99  # every red value in the last of 4 bins
    x[1, :, :1] = 0.3  # 5 of 20 pixels in bin 1 (0.25-0.5), the rest in bin 0
    h = colour_histogram(x, 4)
    assert h.shape == (2, 2 * 3 * 4)
    hist, cdf = h[:, :12].view(2, 3, 4), h[:, 12:].view(2, 3, 4)
    assert torch.equal(hist[0, 0], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert torch.allclose(hist[1, 2], torch.tensor([0.75, 0.25, 0.0, 0.0]))
    assert torch.allclose(cdf[..., -1], torch.ones(2, 3)) and torch.allclose(cdf, hist.cumsum(-1))
    branch = HistogramBranch(5, bins=4)
    assert torch.equal(branch(x), torch.zeros(2, 5))  # adds nothing until trained
    model = AdaptiveLUT(lut_size=5, thumb_size=64, widths=(4, 4, 4, 4, 4), histogram_bins=8).eval()
    assert torch.allclose(model(0.5 * x + 0.25), 0.5 * x + 0.25, atol=1e-5)


def test_pil_filter_matches_apply_lut() -> None:
    g = torch.Generator().manual_seed(3)
    lut = (identity_lut(9) ** 0.7 + 0.02 * torch.rand(3, 9, 9, 9, generator=g)).clamp(0, 1)
    pixels = torch.randint(0, 256, (1, 3, 16, 24), generator=g, dtype=torch.uint8)
    ours = (apply_lut(pixels.float() / 255, lut) * 255).round()
    image = Image.fromarray(pixels[0].permute(1, 2, 0).numpy())
    theirs = (
        torch.from_numpy(np.asarray(image.filter(lut_to_pil_filter(lut))).copy()).permute(2, 0, 1).float()
    )
    assert (ours[0] - theirs).abs().max() <= 1


def test_a_tiny_model_learns_to_undo_a_fixed_exposure_shift(single_thread: None) -> None:
    torch.manual_seed(0)
    coarse = torch.rand(12, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    photos = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic", align_corners=False)
    photos = photos.clamp(0, 1)
    train, held_out = photos[:8], photos[8:]

    def degrade(x: torch.Tensor) -> torch.Tensor:
        return adjust_exposure(x, -1.0).clamp(0, 1)  # one stop under-exposed

    model = AdaptiveLUT(n_luts=2, lut_size=9, thumb_size=32, widths=(8, 8, 8, 8, 8), dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        y, w = model.forward_with_weights(degrade(train))
        loss = torch.nn.functional.mse_loss(y, train) + model.regularisation(w)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.eval()
    with torch.no_grad():
        before = psnr(degrade(held_out), held_out).mean()
        after = psnr(model(degrade(held_out)), held_out).mean()
    assert after > before + 6  # measured: 16.3 → 26.5 dB (one thread)
