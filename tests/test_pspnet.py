"""Tests for models/pspnet.py and models/unet.py: output shapes for odd sizes (feature maps smaller than the
6×6 bins included), the pyramid pooling module, the training / eval output convention, the dilated ResNet
against torchvision's, and ResNet weight loading."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

import models.pspnet as psp
from framework.errors import UserError
from framework.export import OnnxNet, export_net
from models.pspnet import (
    PSPNet,
    PyramidPooling,
    ResNetBackbone,
    adaptive_avg_pool,
    pspnet,
    pspnet_mobilenet_v2,
)
from models.unet import UNet, unet_small

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one thread, no stalls


@pytest.mark.parametrize("size", [(5, 4), (1, 1), (32, 32), (33, 25), (7, 13)])
def test_adaptive_avg_pool_equals_torch(size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size)
    for bins in (1, 2, 3, 6):
        assert torch.allclose(
            adaptive_avg_pool(x, bins), torch.nn.functional.adaptive_avg_pool2d(x, bins), atol=1e-6
        )


def test_pyramid_pooling_shapes_and_branches() -> None:
    ppm = PyramidPooling(32, bins=(1, 2, 3, 6)).eval()
    for size in ((5, 4), (1, 1), (13, 7)):  # smaller than the 6×6 bins, a single pixel, odd
        x = torch.randn(2, 32, *size)
        out = ppm(x)
        assert out.shape == (2, 32 + 4 * 8, *size)
        assert torch.equal(out[:, :32], x)  # the features themselves come first
        global_branch = out[:, 32:40]  # bin 1: one value per channel, broadcast over the map
        assert torch.allclose(global_branch, global_branch[..., :1, :1].expand_as(global_branch))
    with pytest.raises(ValueError, match="bins"):
        PyramidPooling(8, bins=(0, 2))


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("size", [(67, 45), (40, 30)])  # odd; 40×30 at stride 8 is a 5×4 map
def test_pspnet_mobilenet_output_sizes(output_stride: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = pspnet_mobilenet_v2(output_stride=output_stride, weights=None, head_channels=32, aux_channels=16)
    x = torch.rand(2, 3, *size)
    net.train()
    logits, aux = net(x)
    assert logits.shape == aux.shape == (2, 1, *size)
    net.eval()
    with torch.no_grad():
        assert net(x).shape == (2, 1, *size)


def test_training_output_convention_and_gradients() -> None:
    net = pspnet("mobilenet_v2", 16, backbone_weights=None, head_channels=16, aux_channels=8)
    x = torch.rand(2, 3, 64, 48)
    logits, aux = net.train()(x)
    (logits.mean() + aux.mean()).backward()
    assert net.backbone.stem.conv.weight.grad.abs().sum() > 0
    assert net.aux_head[0].weight.grad.abs().sum() > 0
    assert isinstance(net.eval()(x), torch.Tensor)
    no_aux = pspnet("mobilenet_v2", 16, backbone_weights=None, head_channels=16, aux_channels=0)
    assert no_aux.aux_head is None and isinstance(no_aux.train()(x), torch.Tensor)


def _plain_resnet(backbone: ResNetBackbone, depth: int) -> torch.nn.Module:
    """torchvision's undilated ResNet with the backbone's weights."""
    plain = getattr(torchvision.models, f"resnet{depth}")()
    state = {
        k.replace("stem.0.", "conv1.").replace("stem.1.", "bn1."): v for k, v in backbone.state_dict().items()
    }
    plain.load_state_dict(state, strict=False)
    return plain.eval()


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_resnet_equals_torchvision_on_a_finer_grid(depth: int, output_stride: int) -> None:
    """Dilation in place of stride reproduces the stride-32 features at every (32 / s)-th pixel (PyTorch's
    symmetric padding: the even positions), for BasicBlocks (our helper) and Bottlenecks (torchvision's)."""
    torch.manual_seed(0)
    backbone = ResNetBackbone(depth, output_stride, weights=None).eval()
    plain = _plain_resnet(backbone, depth)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        features = backbone.forward_features(x)
        h = plain.maxpool(plain.relu(plain.bn1(plain.conv1((x - backbone.mean) / backbone.std))))
        layer3 = plain.layer3(plain.layer2(plain.layer1(h)))
        layer4 = plain.layer4(layer3)
    step = 32 // output_stride
    assert features["out"].shape[-2:] == (32 // output_stride, 48 // output_stride)
    assert torch.allclose(features["out"][..., ::step, ::step], layer4, atol=1e-4)
    aux_step = 16 // min(output_stride, 16)
    assert torch.allclose(features["aux"][..., ::aux_step, ::aux_step], layer3, atol=1e-4)
    assert {k: v.shape[1] for k, v in features.items()} == backbone.feature_channels


def test_pspnet_resnet18_shapes() -> None:
    net = pspnet("resnet18", 8, backbone_weights=None, head_channels=32, aux_channels=16)
    logits, aux = net.train()(torch.rand(2, 3, 65, 47))
    assert logits.shape == aux.shape == (2, 1, 65, 47)


def test_resnet_weights_from_path(tmp_path) -> None:
    reference = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(reference.state_dict(), path)
    backbone = ResNetBackbone(18, 8, weights=path)
    assert torch.equal(backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(backbone.stem[1].running_var, reference.bn1.running_var)
    with pytest.raises(UserError, match="resnet34"):
        ResNetBackbone(34, 8, weights=path)  # a ResNet-18 file for a ResNet-34
    with pytest.raises(UserError, match="does not exist"):
        ResNetBackbone(18, 8, weights=tmp_path / "missing.pth")


def test_resnet_without_cached_weights_warns_once(monkeypatch) -> None:
    monkeypatch.setattr(psp, "_hub_file", lambda depth: None)
    monkeypatch.setattr(psp, "_warned_scratch", set())
    with pytest.warns(UserWarning, match="FROM SCRATCH"):
        ResNetBackbone(18, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ResNetBackbone(18, 16)
        ResNetBackbone(18, 16, weights=None)


def test_bad_arguments() -> None:
    with pytest.raises(UserError, match="backbone"):
        pspnet("vgg16")
    with pytest.raises(ValueError, match="output_stride"):
        ResNetBackbone(18, 32, weights=None)
    with pytest.raises(ValueError, match="forward_features"):
        PSPNet(torch.nn.Conv2d(3, 8, 3))


def test_unet_any_size_and_small() -> None:
    net = unet_small()
    assert sum(p.numel() for p in net.parameters()) < 2.5e6
    for size in ((67, 45), (16, 16), (5, 3)):
        assert net(torch.rand(2, 3, *size)).shape == (2, 1, *size)
    with pytest.raises(ValueError, match="expects"):
        net(torch.rand(2, 1, 16, 16))


def test_unet_padding_does_not_leak_into_the_crop() -> None:
    """Padding to a multiple of 2**depth is edge replication at the bottom / right, cropped away after: the
    logits equal those of the replicated image, cropped."""
    torch.manual_seed(0)
    net = UNet(base_channels=4, depth=2).eval()
    x = torch.rand(1, 3, 30, 30)
    with torch.no_grad():
        direct = net(x)
        padded = net(torch.nn.functional.pad(x, (0, 2, 0, 2), mode="replicate"))[..., :30, :30]
    assert torch.allclose(direct, padded, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pspnet", "unet"])
def test_onnx_export_with_dynamic_sizes(tmp_path, name: str) -> None:
    """The shared export (framework.export: torch's dynamo exporter, dynamic batch / height / width) equals
    torch in ONNX Runtime at sizes other than the traced one: TF "SAME" padding, the pyramid's pooling
    matrices and the U-Net's padding follow the size."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = (
        pspnet_mobilenet_v2(16, weights=None, head_channels=16, aux_channels=8)
        if name == "pspnet"
        else UNet(base_channels=4)
    ).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_net(net, tmp_path / f"{name}.onnx", torch.rand(1, 3, 64, 64))
    for size in ((97, 75), (64, 48)):
        x = torch.rand(2, 3, *size)
        with torch.no_grad():
            expected = net(x)
        got = OnnxNet(path)(x)
        assert got.shape == expected.shape and (got - expected).abs().max() < 1e-4
