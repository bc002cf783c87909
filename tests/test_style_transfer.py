"""Tests for algorithms/style_transfer.py: Gatys' image optimisation and the lecture's fast few-step mode."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from algorithms.style_transfer import fast_style, gatys
from losses.style import StyleTransferLoss
from tests.conftest import needs_vgg_weights

pytestmark = [needs_vgg_weights, pytest.mark.usefixtures("single_thread")]


def _smooth_image(seed: int, size: tuple[int, int] = (40, 48)) -> torch.Tensor:
    """A photo-like test image: low-frequency random colours."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 5, 6, generator=g)
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def _stripes(size: tuple[int, int] = (40, 40)) -> torch.Tensor:
    """A 'painting': diagonal colour stripes."""
    y, x = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    phase = (x + y).float() * 0.8
    return torch.stack([phase.sin(), (phase + 2).sin(), (phase + 4).sin()])[None] * 0.5 + 0.5


@pytest.fixture(scope="module")
def loss() -> StyleTransferLoss:
    return StyleTransferLoss(content_weight=1.0, style_weight=10.0, tv_weight=0.1)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_few_gatys_steps_lower_the_total_loss(loss: StyleTransferLoss, optimizer: str) -> None:
    content, style = _smooth_image(0), _stripes()
    before = loss(content, content, style)
    result = gatys(content, style, loss, steps=5, optimizer=optimizer)
    after = loss(result.image, content, style)
    assert result.image.shape == content.shape and not result.image.requires_grad
    assert result.image.min() >= 0 and result.image.max() <= 1
    assert after.item() < 0.8 * before.item()
    assert len(result.history) == 5 and result.history[0]["total"] == pytest.approx(before.item(), rel=1e-4)
    assert set(result.history[0]) == {"scale", "total", "content", "style", "tv"}


def test_coarse_to_fine_and_noise_init(loss: StyleTransferLoss) -> None:
    content, style = _smooth_image(1), _stripes()
    seen: list[tuple[int, tuple[int, ...]]] = []
    result = gatys(
        content,
        style,
        loss,
        steps=(4, 2),
        init="noise",
        scales=(0.5, 1.0),
        generator=torch.Generator().manual_seed(0),
        callback=lambda step, image: seen.append((step, tuple(image.shape[-2:]))),
    )
    assert result.image.shape == content.shape
    assert [h["scale"] for h in result.history] == [0.5] * 4 + [1.0] * 2
    assert seen[0] == (1, (20, 24)) and seen[-1] == (6, (40, 48))
    # the coarse stage lowered its loss, and noise is far from the content at the start
    coarse = [h["total"] for h in result.history[:4]]
    assert coarse[-1] < coarse[0]
    assert result.history[0]["content"] > 0


def test_gatys_refuses_bad_arguments(loss: StyleTransferLoss) -> None:
    content, style = _smooth_image(0), _stripes()
    with pytest.raises(ValueError, match="optimizer"):
        gatys(content, style, loss, steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match=r"end at 1\.0"):
        gatys(content, style, loss, steps=1, scales=(0.5,))
    with pytest.raises(ValueError, match="one per scale"):
        gatys(content, style, loss, steps=(1, 2, 3), scales=(0.5, 1.0))
    with pytest.raises(ValueError, match="style must be RGB"):
        gatys(content, style[:, :1], loss, steps=1)


def test_fast_with_zero_steps_returns_the_content(loss: StyleTransferLoss) -> None:
    content, style = _smooth_image(2), _stripes()
    assert torch.equal(fast_style(content, style, loss, k=0), content)


def test_fast_steps_lower_the_style_loss(loss: StyleTransferLoss) -> None:
    content, style = _smooth_image(3), _stripes()
    grams = loss.style_targets(style)

    def style_of(image: torch.Tensor) -> float:
        return loss.per_sample(image, content, grams)["style"].item()

    start = style_of(content)
    one, three = (style_of(fast_style(content, grams, loss, k=k, step=0.02)) for k in (1, 3))
    assert one < start and three < one
    out = fast_style(content, style, loss, k=2)
    assert out.shape == content.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="k must be"):
        fast_style(content, style, loss, k=-1)
    with pytest.raises(ValueError, match="step"):
        fast_style(content, style, loss, k=1, step=0.0)
