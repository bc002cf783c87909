"""Tests for losses/perceptual.py: VGG features (offline normalised weights, torchvision format, random
fallback), freezing, state-dict exclusion and the pixel + content loss."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import losses.perceptual as perceptual
from framework.errors import UserError
from losses.perceptual import DEFAULT_VGG_WEIGHTS, PixelContentLoss, VGGFeatures
from tests.conftest import needs_vgg_weights

ALL_OFFLINE = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1")


@pytest.fixture
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget whether the random-weights warning was already given in this process."""
    monkeypatch.setattr(perceptual, "_warned_random_weights", False)


def _images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 24, 24, generator=g), torch.rand(2, 3, 24, 24, generator=g)


@needs_vgg_weights
def test_shared_weights_match_direct_reimplementation() -> None:
    state = torch.load(DEFAULT_VGG_WEIGHTS, weights_only=True)
    vgg = VGGFeatures(ALL_OFFLINE)
    assert vgg.flavour == "normalised"
    x, _ = _images()
    # The preprocessing conv: RGB in [0, 1] → BGR·255 − Caffe mean.
    pre = vgg.preprocess(x)
    expected = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    assert torch.allclose(pre, expected, atol=1e-3)

    def conv(h: torch.Tensor, i: int) -> torch.Tensor:
        return F.relu(
            F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), state[f"{i}.weight"], state[f"{i}.bias"])
        )

    h = F.conv2d(x, state["0.weight"], state["0.bias"])
    ref = {"relu1_1": (h := conv(h, 2)), "relu1_2": (h := conv(h, 5))}
    h = F.max_pool2d(h, 2)
    ref |= {"relu2_1": (h := conv(h, 9)), "relu2_2": (h := conv(h, 12))}
    ref["relu3_1"] = conv(F.max_pool2d(h, 2), 16)
    out = vgg(x)
    assert list(out) == list(ALL_OFFLINE)
    for name in ALL_OFFLINE:
        assert out[name].shape == ref[name].shape
        assert torch.allclose(out[name], ref[name], rtol=1e-4, atol=1e-3), name


def test_deeper_layers_need_torchvision() -> None:
    with pytest.raises(ValueError, match=r"relu3_1.*torchvision"):
        VGGFeatures(("relu1_2", "relu4_1"))
    with pytest.raises(ValueError, match="unknown"):
        VGGFeatures(("relu9_9",))


def test_frozen_and_always_eval() -> None:
    vgg = VGGFeatures(("relu1_2",))
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg(x)["relu1_2"].sum().backward()  # gradients still reach the input
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_random_fallback_warns_exactly_once(fresh_warning: None, tmp_path) -> None:
    missing = tmp_path / "nope.pth"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        VGGFeatures(weights=missing)
        VGGFeatures(weights=missing)
        PixelContentLoss(0.1, weights=missing)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert "RANDOM" in messages[0] and "meaningless" in messages[0] and str(missing) in messages[0]


def test_random_fallback_keeps_preprocessing(fresh_warning: None, tmp_path) -> None:
    with pytest.warns(UserWarning):
        vgg = VGGFeatures(weights=tmp_path / "nope.pth")
    x = torch.rand(1, 3, 8, 8)
    expected = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    assert torch.allclose(vgg.preprocess(x), expected, atol=1e-3)


def test_torchvision_state_dict_is_accepted(tmp_path) -> None:
    """A (partial) torchvision vgg19 state_dict: keys features.<i>.*, ImageNet mean/std, zero padding."""
    g = torch.Generator().manual_seed(0)
    shapes = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128)}
    state = {}
    for i, (c_out, c_in) in shapes.items():
        state[f"features.{i}.weight"] = 0.05 * torch.randn(c_out, c_in, 3, 3, generator=g)
        state[f"features.{i}.bias"] = 0.01 * torch.randn(c_out, generator=g)
    path = tmp_path / "vgg19_partial.pth"
    torch.save(state, path)
    vgg = VGGFeatures(("relu1_2", "relu2_2"), weights=path)
    assert vgg.flavour == "torchvision"
    x, _ = _images()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = (x - mean) / std
    for i in (0, 2):
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
    relu1_2 = h
    h = F.max_pool2d(h, 2)
    for i in (5, 7):
        h = F.relu(F.conv2d(h, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
    out = vgg(x)
    assert torch.allclose(out["relu1_2"], relu1_2, atol=1e-5)
    assert torch.allclose(out["relu2_2"], h, atol=1e-5)
    with pytest.raises(UserError, match=r"features\.10"):  # conv3_1 is not in this file
        VGGFeatures(("relu3_1",), weights=path)


def test_unrecognised_weights_file(tmp_path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="neither"):
        VGGFeatures(weights=path)


def test_loss_zero_for_identical_positive_otherwise() -> None:
    loss = PixelContentLoss(content_weight=0.01)
    x, y = _images()
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    value = loss(x, y)
    assert value.ndim == 0 and value.item() > 0
    terms = loss.last_terms
    assert set(terms) == {"mse", "content"} and terms["content"] > 0
    assert value.item() == pytest.approx((terms["mse"] + 0.01 * terms["content"]).item(), rel=1e-5)


def test_zero_weight_is_plain_mse_without_vgg() -> None:
    loss = PixelContentLoss(0.0)
    assert loss.vgg is None and list(loss.parameters()) == []
    x, y = _images()
    assert torch.equal(loss(x, y), F.mse_loss(x, y))
    assert set(loss.last_terms) == {"mse"}
    with pytest.raises(ValueError, match=">= 0"):
        PixelContentLoss(-1.0)


def test_loss_gradient_flows_to_prediction() -> None:
    loss = PixelContentLoss(0.01, layers=("relu1_1",))
    x, y = _images()
    x.requires_grad_(True)
    loss(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vgg_is_left_out_of_checkpoints() -> None:
    container = torch.nn.ModuleDict({"head": torch.nn.Conv2d(3, 3, 1), "loss": PixelContentLoss(0.01)})
    state = container.state_dict()
    assert all(not key.startswith("loss.") for key in state), list(state)
    vgg = container["loss"].vgg
    before = vgg.convs["conv1_1"].weight.clone()
    container.load_state_dict(state, strict=True)  # no missing keys for the VGG
    # An old checkpoint that did store (other) VGG weights neither fails nor overwrites them.
    stale = dict(state) | {"loss.vgg.convs.conv1_1.weight": torch.zeros_like(before)}
    container.load_state_dict(stale, strict=True)
    assert torch.equal(vgg.convs["conv1_1"].weight, before)


# --- the project's one VGG: named conv/relu layers, exactly what is asked, refusals in one line ---


def test_returns_exactly_the_requested_layers_in_order() -> None:
    vgg = VGGFeatures(("relu2_1", "conv1_1", "relu1_1"))
    out = vgg(torch.rand(2, 3, 20, 18))
    assert list(out) == ["relu2_1", "conv1_1", "relu1_1"]
    assert out["conv1_1"].shape == (2, 64, 20, 18) and out["relu2_1"].shape == (2, 128, 10, 9)
    # conv* is the convolution before its ReLU: it has negative values, and its ReLU is relu*.
    assert out["conv1_1"].min() < 0
    assert torch.equal(out["conv1_1"].clamp(min=0), out["relu1_1"])
    # Only the convolutions up to the deepest requested layer are built (conv1_1, conv1_2, conv2_1).
    assert list(vgg.convs) == ["conv1_1", "conv1_2", "conv2_1"]
    with pytest.raises(ValueError, match="twice"):
        VGGFeatures(("relu1_1", "relu1_1"))


def test_conv_layer_stops_before_its_relu() -> None:
    vgg = VGGFeatures(("conv2_2",))
    assert list(vgg.convs)[-1] == "conv2_2"
    assert vgg(torch.rand(1, 3, 16, 16))["conv2_2"].min() < 0


def test_refuses_missing_layer_in_one_line_naming_available_ones() -> None:
    with pytest.raises(perceptual.VGGLayerError) as caught:
        VGGFeatures(("relu1_1", "conv4_2", "relu5_1"))
    message = str(caught.value)
    assert "\n" not in message
    assert "['conv4_2', 'relu5_1']" in message
    assert (
        "available conv1_1, relu1_1, conv1_2, relu1_2, conv2_1, relu2_1, conv2_2, relu2_2, conv3_1, relu3_1."
        in (message)
    )
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)


def test_partial_torchvision_file_lists_what_it_has(tmp_path) -> None:
    state = {}
    for i, (c_out, c_in) in {0: (64, 3), 2: (64, 64)}.items():
        state[f"features.{i}.weight"] = torch.zeros(c_out, c_in, 3, 3)
        state[f"features.{i}.bias"] = torch.zeros(c_out)
    path = tmp_path / "vgg19_block1.pth"
    torch.save(state, path)
    loaded = perceptual.load_vgg_weights(path)
    assert loaded.flavour == "torchvision" and loaded.available == (
        "conv1_1",
        "relu1_1",
        "conv1_2",
        "relu1_2",
    )
    assert not loaded.has_deep_layers
    with pytest.raises(
        perceptual.VGGLayerError, match=r"no features\.5\.weight for conv2_1\): available conv1_1, "
    ):
        VGGFeatures(("conv2_1",), weights=loaded)
    assert VGGFeatures(("relu1_2",), weights=loaded).flavour == "torchvision"


def test_random_torchvision_flavour_has_every_layer(fresh_warning: None, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(perceptual, "_torchvision_cache_file", lambda: tmp_path / "absent.pth")
    with pytest.warns(UserWarning, match="RANDOM"):
        loaded = perceptual.load_vgg_weights("torchvision")
    assert loaded.available == perceptual.VGG19_ALL_LAYERS and not loaded.has_deep_layers
    vgg = VGGFeatures(("relu5_1",), weights=loaded)
    assert vgg(torch.rand(1, 3, 32, 32))["relu5_1"].shape == (1, 512, 2, 2)


@needs_vgg_weights
def test_offline_weights_report_their_layers() -> None:
    loaded = perceptual.load_vgg_weights(DEFAULT_VGG_WEIGHTS)
    assert loaded.flavour == "normalised" and loaded.available[-1] == "relu3_1"
    assert not loaded.has_deep_layers
    assert VGGFeatures(("relu3_1",), weights=loaded).pretrained
