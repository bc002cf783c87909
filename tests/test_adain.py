"""Tests for models/adain.py: the AdaIN operation, the mirrored decoder, the model and its training losses."""

from __future__ import annotations

import itertools

import pytest
import torch

from models.adain import (
    AdaINDecoder,
    AdaINStyleTransfer,
    adain,
    adain_style_loss,
    channel_mean_std,
)
from tests.conftest import needs_vgg_weights

pytestmark = pytest.mark.usefixtures("single_thread")


def test_adain_output_has_the_style_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    content = 3.0 * torch.randn(2, 8, 9, 7, generator=g) + 1.0
    style = 0.5 * torch.randn(2, 8, 5, 6, generator=g) - 2.0
    out = adain(content, style, eps=1e-8)
    out_mean, out_std = channel_mean_std(out, eps=0.0)
    style_mean, style_std = channel_mean_std(style, eps=0.0)
    assert out.shape == content.shape
    assert torch.allclose(out_mean, style_mean, atol=1e-5)
    assert torch.allclose(out_std, style_std, atol=1e-5)
    # a single style broadcasts over the batch; the normalised content pattern is kept
    one = adain(content, style[:1], eps=1e-8)
    assert torch.allclose(channel_mean_std(one, 0.0)[0], style_mean[:1].expand(2, -1, -1, -1), atol=1e-5)
    corr = torch.corrcoef(torch.stack([out[0, 0].flatten(), content[0, 0].flatten()]))[0, 1]
    assert corr > 0.9999


def test_channel_mean_std_by_hand() -> None:
    x = torch.tensor([1.0, 3.0, 1.0, 3.0]).view(1, 1, 2, 2)
    mean, std = channel_mean_std(x, eps=0.0)
    assert mean.item() == 2.0 and std.item() == 1.0  # population std


def test_adain_style_loss_zero_for_same_statistics() -> None:
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 6, 4, 4, generator=g)]
    shuffled = [f.flip(-1).flip(-2) for f in feats]  # same statistics, different layout
    assert adain_style_loss(shuffled, feats).item() == pytest.approx(0.0, abs=1e-10)
    assert adain_style_loss([f + 1 for f in feats], feats).item() == pytest.approx(
        2.0, rel=1e-5
    )  # 1² per layer


def test_decoder_mirrors_the_encoder_and_keeps_odd_sizes() -> None:
    decoder = AdaINDecoder("relu3_1")
    convs = [m for m in decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (256, 128),
        (128, 128),
        (128, 64),
        (64, 64),
        (64, 3),
    ]
    out = decoder(torch.rand(1, 256, 65, 49), sizes=[(257, 193), (129, 97)])
    assert out.shape == (1, 3, 257, 193)
    deep = AdaINDecoder("relu4_1")
    assert [m.out_channels for m in deep.modules() if isinstance(m, torch.nn.Conv2d)][:4] == [
        256,
        256,
        256,
        256,
    ]
    light = AdaINDecoder("relu3_1", width=0.5)
    assert [(c.in_channels, c.out_channels) for c in light.modules() if isinstance(c, torch.nn.Conv2d)] == [
        (256, 64),
        (64, 64),
        (64, 32),
        (32, 32),
        (32, 3),
    ]
    with pytest.raises(ValueError, match="sizes needs 2"):
        decoder(torch.rand(1, 256, 4, 4), sizes=[(16, 16)])


@needs_vgg_weights
def test_model_keeps_odd_sizes_alpha_and_saves_only_the_decoder() -> None:
    torch.manual_seed(0)
    model = AdaINStyleTransfer(decoder_width=0.25)
    assert model.layer == "relu3_1" and model.encoder.pretrained
    content, style = torch.rand(1, 3, 57, 43), torch.rand(1, 3, 40, 30)
    with torch.no_grad():
        out = model(content, style)
        assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
        # alpha = 0 decodes the content's own features; precomputed style features give the same output
        target0 = model.encode(content)[-1]
        assert torch.allclose(
            model(content, style, alpha=0.0),
            model.decoder(target0, [(57, 43), (29, 22)]).clamp(0, 1),
            atol=1e-6,
        )
        assert torch.allclose(model(content, model.encode(style)), out, atol=1e-6)
    assert all(key.startswith("decoder.") for key in model.state_dict())
    with pytest.raises(ValueError, match="alpha"):
        model(content, style, alpha=1.5)


@needs_vgg_weights
def test_training_losses_decrease_with_a_few_decoder_steps() -> None:
    torch.manual_seed(0)
    model = AdaINStyleTransfer(decoder_width=0.25)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32) ** 2
    optimiser = torch.optim.Adam(model.decoder.parameters(), lr=1e-4)  # the paper's learning rate
    values = []
    for _ in range(8):
        losses = model.training_losses(content, style)
        total = losses["content"] + 10.0 * losses["style"]
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        values.append(total.item())
    assert losses["output"].shape == content.shape
    assert values[-1] < 0.8 * values[0]
    assert all(b < a for a, b in itertools.pairwise(values))
    assert all(p.grad is None for p in model.encoder.parameters())
