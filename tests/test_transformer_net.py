"""Tests for models/transformer_net.py: Johnson et al.'s image-transformation network, its light variant."""

from __future__ import annotations

import pytest
import torch

from models.transformer_net import TransformerNet, transformer_net, transformer_net_light

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("build", [transformer_net, transformer_net_light])
def test_keeps_odd_input_sizes_and_range(build) -> None:
    torch.manual_seed(0)
    net = build().eval()
    x = torch.rand(1, 3, 257, 193)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.min() > 0 and y.max() < 1  # sigmoid output (Johnson's scaled tanh)


@pytest.mark.parametrize("separable", [False, True])
def test_small_and_batched_inputs_and_gradients(separable: bool) -> None:
    torch.manual_seed(0)
    net = TransformerNet((4, 8, 16), num_residual_blocks=2, outer_kernel_size=3, separable=separable)
    x = torch.rand(2, 3, 13, 6)
    y = net(x)
    assert y.shape == x.shape
    y.mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    # instance norm: each sample is normalised on its own, so a batch equals its samples run alone
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(x)[1:], net(x[1:]), atol=1e-6)


def test_variants_sizes() -> None:
    full, light = transformer_net(), transformer_net_light()
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert 1.6e6 < count(full) < 1.8e6  # Johnson et al.: ~1.7 M
    assert count(light) < count(full) / 3
    separable = TransformerNet((16, 32, 64), 5, 3, separable=True)
    depthwise = [m for m in separable.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 12 and all(m.groups == m.in_channels for m in depthwise)  # 10 residual + 2 up
    assert count(separable) < count(light) / 5


def test_instance_norm_is_groupnorm_with_one_channel_per_group() -> None:
    from models.transformer_net import instance_norm

    norm, reference = instance_norm(6), torch.nn.InstanceNorm2d(6, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
        reference.weight.copy_(norm.weight)
        reference.bias.copy_(norm.bias)
    x = 3 * torch.randn(2, 6, 7, 5) + 1
    assert torch.allclose(norm(x), reference(x), atol=1e-5)


def test_bf16_channels_last_matches_fp32() -> None:
    torch.manual_seed(0)
    net = transformer_net_light().eval()
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        reference = net(x)
        fast = net.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = fast(x.contiguous(memory_format=torch.channels_last))
    assert y.shape == x.shape
    assert (y.float() - reference).abs().max() < 0.05


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="3 positive widths"):
        TransformerNet((8, 16))
    with pytest.raises(ValueError, match="odd"):
        TransformerNet(outer_kernel_size=4)
    with pytest.raises(ValueError, match="padding"):
        TransformerNet(padding="circular")
    with pytest.raises(ValueError, match="RGB"):
        transformer_net_light()(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=">= 5"):
        transformer_net_light()(torch.rand(1, 3, 4, 16))
