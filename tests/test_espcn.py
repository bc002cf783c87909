"""Tests for models/espcn.py: sub-pixel shapes, builders, Y-channel wrapper, bicubic baseline, overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.espcn import ESPCN, BicubicUpsampler, YChannelSR, espcn, espcn_paper
from operators.degradation import make_lr
from tests.conftest import SHARED_DATA

BUTTERFLY = SHARED_DATA / "sr" / "Set5" / "img_003.png"


@pytest.mark.parametrize("r", [2, 3, 4])
@pytest.mark.parametrize("builder", [espcn, espcn_paper])
def test_builders_upscale_rgb(builder, r: int) -> None:
    net = builder(r)
    x = torch.rand(2, 3, 10, 13)
    y = net(x)
    assert y.shape == (2, 3, 10 * r, 13 * r)
    assert net.upscale_factor == r
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("r", [2, 3, 4])
def test_sub_pixel_layer_channels(r: int) -> None:
    slide, paper = espcn(r), espcn_paper(r)
    assert isinstance(paper, YChannelSR) and isinstance(paper.net, ESPCN)
    assert slide.body[-1].out_channels == 3 * r**2
    assert paper.net.body[-1].out_channels == 1 * r**2
    assert [m.kernel_size[0] for m in slide.body if isinstance(m, torch.nn.Conv2d)] == [5, 5, 5]
    assert [m.kernel_size[0] for m in paper.net.body if isinstance(m, torch.nn.Conv2d)] == [5, 3, 3]
    assert [m.out_channels for m in paper.net.body if isinstance(m, torch.nn.Conv2d)][:2] == [64, 32]
    assert isinstance(slide.body[1], torch.nn.LeakyReLU) and slide.body[1].negative_slope == 0.2
    assert isinstance(paper.net.body[1], torch.nn.Tanh)


def test_pixel_shuffle_layout() -> None:
    """out[c, r·y + i, r·x + j] = feat[c·r² + r·i + j, y, x]: a net whose last conv is a known map."""
    net = ESPCN(2, in_channels=1, features=(4,), kernel_sizes=(1, 1), output_activation="identity")
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.body[-1].bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    out = net(torch.zeros(1, 1, 1, 1))
    assert torch.equal(out[0, 0], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"upscale_factor": 5}, r"\(2, 3, 4\)"),
        ({"activation": "gelu"}, "leaky_relu"),
        ({"output_activation": "tanh"}, "sigmoid"),
        ({"kernel_sizes": (5, 5)}, "kernel_sizes"),
        ({"kernel_sizes": (5, 4, 5)}, "odd"),
        ({"features": ()}, "features"),
    ],
)
def test_espcn_validates_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ESPCN(**kwargs)


def test_ychannel_wrapper_keeps_shape_and_matches_bicubic() -> None:
    """Bicubic on Y + bicubic on CbCr = bicubic on RGB (linear colour transform), up to clamping."""
    x = F.interpolate(torch.rand(2, 3, 6, 6), size=(18, 18), mode="bilinear")
    wrapped = YChannelSR(BicubicUpsampler(2))
    out = wrapped(x)
    assert out.shape == (2, 3, 36, 36)
    assert torch.allclose(out, BicubicUpsampler(2)(x), atol=1e-2)
    with pytest.raises(ValueError, match="upscale_factor"):
        YChannelSR(torch.nn.Identity())


def test_bicubic_upsampler_has_no_parameters() -> None:
    up = BicubicUpsampler(3)
    assert list(up.parameters()) == []
    out = up(torch.rand(1, 3, 7, 5))
    assert out.shape == (1, 3, 21, 15) and out.min() >= 0 and out.max() <= 1
    assert torch.allclose(up(torch.full((1, 3, 4, 4), 0.7)), torch.full((1, 3, 12, 12), 0.7), atol=1e-6)


def test_tiny_espcn_overfits_one_crop(single_thread) -> None:
    torch.manual_seed(0)
    if BUTTERFLY.is_file():
        from datamodules.io import load_image

        hr = load_image(BUTTERFLY)[None, :, 100:148, 100:148]
    else:  # smooth synthetic image
        hr = F.interpolate(torch.rand(1, 3, 6, 6), size=(48, 48), mode="bicubic").clamp(0, 1)
    lr = make_lr(hr, 3)
    net = ESPCN(3, features=(16, 8), kernel_sizes=(5, 3, 3))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    first = None
    for _ in range(150):  # ~0.2 s on 2 idle CPU cores; the loss falls ~15x
        loss = F.mse_loss(net(lr), hr)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() * 5 <= first, (first, loss.item())
