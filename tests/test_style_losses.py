"""Tests for losses/style.py: the lecture's Gram matrix and style loss, content loss, total variation and the
combined StyleTransferLoss on the project's VGG."""

from __future__ import annotations

import pytest
import torch

import losses.perceptual as perceptual
from losses.style import (
    OFFLINE_CONTENT_LAYERS,
    OFFLINE_STYLE_LAYERS,
    StyleTransferLoss,
    content_loss,
    default_layer_weights,
    gram_matrix,
    style_loss,
    total_variation_loss,
)
from tests.conftest import needs_vgg_weights

pytestmark = pytest.mark.usefixtures("single_thread")


def _image(seed: int, size: tuple[int, int] = (32, 40), batch: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, *size, generator=g)


def test_gram_matches_hand_computation() -> None:
    # Two channels on a 2 × 2 map: a = [1, 2, 3, 4], b = [0, 1, 0, -1] (row-major), H W = 4.
    phi = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])
    expected = torch.tensor(
        [[(1 + 4 + 9 + 16) / 4, (0 + 2 + 0 - 4) / 4], [(0 + 2 + 0 - 4) / 4, (0 + 1 + 0 + 1) / 4]]
    )
    assert torch.allclose(gram_matrix(phi), expected[None])


def test_gram_batched_symmetric_and_einsum_reference() -> None:
    phi = torch.randn(3, 5, 6, 7, generator=torch.Generator().manual_seed(1))
    gram = gram_matrix(phi)
    assert gram.shape == (3, 5, 5)
    assert torch.allclose(gram, gram.transpose(1, 2))
    reference = torch.einsum("bchw,bdhw->bcd", phi, phi) / (6 * 7)
    assert torch.allclose(gram, reference, atol=1e-6)
    assert torch.allclose(gram[1], gram_matrix(phi[1:2])[0])  # samples do not mix
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gram_matrix(phi[0])


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_gram_gradcheck(memory_format) -> None:
    phi = torch.randn(2, 3, 3, 4, dtype=torch.float64).contiguous(memory_format=memory_format)
    assert torch.autograd.gradcheck(gram_matrix, (phi.requires_grad_(True),))


def test_gram_stays_float32_under_bf16_autocast() -> None:
    phi = torch.rand(1, 8, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(phi.bfloat16())
    assert gram.dtype == torch.float32
    assert torch.allclose(gram, gram_matrix(phi.bfloat16().float()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_gram_of_channels_last_features_equals_the_contiguous_one_and_keeps_the_layout(dtype) -> None:
    phi = torch.randn(2, 5, 6, 7, dtype=torch.float64).to(dtype)
    phi_first = phi.clone().requires_grad_(True)
    phi_last = phi_first.contiguous(memory_format=torch.channels_last)  # a channels-last feature map
    arriving: list[torch.Tensor] = []
    phi_last.register_hook(arriving.append)
    gram_last, gram_first = gram_matrix(phi_last), gram_matrix(phi_first)
    assert torch.allclose(gram_last, gram_first, rtol=1e-6, atol=1e-6)
    weights = torch.randn_like(gram_first)
    (grad_last,) = torch.autograd.grad((gram_last * weights).sum(), phi_first)
    (grad_first,) = torch.autograd.grad((gram_first * weights).sum(), phi_first)
    assert torch.allclose(grad_last.double(), grad_first.double(), rtol=1e-2, atol=1e-2)
    assert arriving[0].is_contiguous(memory_format=torch.channels_last)  # no transposed copy on the way back


def test_style_loss_is_the_weighted_squared_frobenius_distance() -> None:
    g = torch.Generator().manual_seed(2)
    grams = {"a": torch.randn(2, 3, 3, generator=g), "b": torch.randn(2, 4, 4, generator=g)}
    targets = {"a": torch.randn(1, 3, 3, generator=g), "b": torch.randn(1, 4, 4, generator=g)}
    weights = {"a": 0.5, "b": 2.0}
    value = style_loss(grams, targets, weights)
    assert value.shape == (2,)
    for i in range(2):
        expected = sum(
            w * torch.linalg.matrix_norm(targets[k][0] - grams[k][i], "fro") ** 2 for k, w in weights.items()
        )
        assert value[i].item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.all(style_loss(grams, grams, weights) == 0)
    with pytest.raises(ValueError, match="'c'"):
        style_loss(grams, targets, {"c": 1.0})


def test_default_layer_weights_average_over_entries_and_layers() -> None:
    assert default_layer_weights({"relu1_1": 64, "relu2_1": 128}) == {
        "relu1_1": 1 / (2 * 64**2),
        "relu2_1": 1 / (2 * 128**2),
    }


def test_content_loss_and_total_variation_by_hand() -> None:
    x = torch.zeros(2, 1, 2, 2)
    y = x.clone()
    y[1, 0, 0, 0] = 2.0
    assert torch.equal(content_loss(x, y), torch.tensor([0.0, 1.0]))  # 2² / 4 elements
    with pytest.raises(ValueError, match="same size"):
        content_loss(x, y[..., :1])
    ramp = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]).view(1, 1, 2, 3)
    # vertical differences all 0, horizontal all 1: mean 0 + mean 1
    assert total_variation_loss(ramp).item() == pytest.approx(1.0)
    assert total_variation_loss(torch.ones(3, 3, 5, 5)).tolist() == [0.0, 0.0, 0.0]


@needs_vgg_weights
def test_offline_defaults_and_zero_losses_for_their_own_targets() -> None:
    loss = StyleTransferLoss(content_weight=1.0, style_weight=10.0, tv_weight=0.1)
    assert loss.style_layers == OFFLINE_STYLE_LAYERS and loss.content_layers == OFFLINE_CONTENT_LAYERS
    assert loss.vgg.pretrained and set(loss.vgg.layers) == {"relu1_1", "relu2_1", "relu3_1"}
    content, style = _image(0), _image(1, (36, 28))
    # the style image itself: style loss 0; the content image itself: content loss 0
    loss(style, _image(2, (36, 28)), style)
    assert loss.last_parts["style"].item() == pytest.approx(0.0, abs=1e-6)
    loss(content, content, style)
    parts = loss.last_parts
    assert parts["content"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["style"].item() > 0 and parts["tv"].item() > 0
    total, parts = loss(_image(3), content, style), loss.last_parts
    per_image = loss.per_sample(_image(3), content, style)
    assert {name: value.shape for name, value in per_image.items()} == dict.fromkeys(parts, (1,))
    expected = parts["content"] + 10.0 * parts["style"] + 0.1 * parts["tv"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


@needs_vgg_weights
def test_precomputed_and_fixed_style_give_the_same_loss() -> None:
    loss = StyleTransferLoss(content_weight=0.5, style_weight=2.0)
    content, style, pred = _image(0, batch=2), _image(1, (30, 30)), _image(2, batch=2)
    total = loss(pred, content, style)
    total_pre = loss(pred, loss.content_targets(content), loss.style_targets(style))
    loss.set_style(style)
    assert loss.has_style()
    total_fixed = loss(pred, content)
    assert total_pre.item() == pytest.approx(total.item(), rel=1e-6)
    assert total_fixed.item() == pytest.approx(total.item(), rel=1e-6)
    assert "style_gram_relu1_1" not in loss.state_dict()  # the fixed style is not checkpointed
    # per-sample style loss averaged over the batch: equal to the mean of the single-sample losses
    singles = loss.per_sample(pred, content)["style"]
    for i in range(2):
        loss(pred[i : i + 1], content[i : i + 1])
        assert loss.last_parts["style"].item() == pytest.approx(singles[i].item(), rel=1e-5)
    loss(pred, content)
    assert loss.last_parts["style"].item() == pytest.approx(singles.mean().item(), rel=1e-5)


@needs_vgg_weights
def test_gradient_reaches_the_image_and_not_the_vgg() -> None:
    loss = StyleTransferLoss(style_layers=("conv1_1", "relu2_1"), content_layers=("relu2_2",))
    pred = _image(0).requires_grad_(True)
    loss(pred, _image(1), _image(2)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="style_weight must be >= 0"):
        StyleTransferLoss(style_weight=-1.0)
    with pytest.raises(ValueError, match="both 0"):
        StyleTransferLoss(content_weight=0.0, style_weight=0.0)
    with pytest.raises(ValueError, match="3 non-negative weights"):
        StyleTransferLoss(style_layer_weights=(1.0, 2.0))
    with pytest.raises(perceptual.VGGLayerError, match="available"):
        StyleTransferLoss(style_layers=("relu4_1",))
    loss = StyleTransferLoss(content_weight=1.0, style_weight=1.0)
    with pytest.raises(ValueError, match="set_style"):
        loss(_image(0), _image(0))
    with pytest.raises(ValueError, match="content image"):
        loss(_image(0), None, _image(1))


def test_style_only_loss_needs_no_content() -> None:
    loss = StyleTransferLoss(content_weight=0.0, style_weight=1.0, style_layers=("relu1_1",))
    total, parts = loss(_image(0), None, _image(1)), loss.last_parts
    assert set(parts) == {"style"} and total.item() == pytest.approx(parts["style"].item())
