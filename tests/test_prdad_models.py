"""PR-DAD networks: shapes, wiring, and a tiny overfit run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losses.rot180 import Rot180InvariantLoss
from models.prdad import (
    ConvAutoEncoder,
    ConvDoubleBlock,
    DownConvBlock,
    MagnitudeMLP,
    MLPBlock,
    PRDADAutoEncoder,
    PRDADWaveletPacket,
    UpConvBlock,
    magnitude_features,
    num_magnitude_features,
)
from operators.fourier import FourierMagnitude, rot180
from operators.wavelet_packet import haar_packet_forward

pytestmark = pytest.mark.usefixtures("single_thread")


def _y(b: int, n: int, pad: int, seed: int = 0) -> torch.Tensor:
    x = torch.rand(b, 1, n, n, generator=torch.Generator().manual_seed(seed))
    return FourierMagnitude(pad)(x)


def smooth_images(b: int, n: int, seed: int = 0) -> torch.Tensor:
    z = torch.rand(b, 1, n // 4, n // 4, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(z, size=(n, n), mode="bilinear", align_corners=False)


def test_mlp_widths_follow_multipliers() -> None:
    mlp = MagnitudeMLP(10, 7, width_multipliers=(2, 2))
    linears = [m for m in mlp.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 20), (20, 40), (40, 7)]
    block = mlp.blocks[0]
    assert isinstance(block, MLPBlock)
    assert [type(m) for m in block] == [nn.Linear, nn.BatchNorm1d, nn.PReLU]
    assert isinstance(MLPBlock(4, 4, dropout=0.1)[-1], nn.Dropout)
    assert mlp(torch.randn(3, 10)).shape == (3, 7)


def test_magnitude_features_half_spectrum() -> None:
    y = _y(2, 12, 2)  # m = 16
    f = magnitude_features(y, half_spectrum=True)
    assert f.shape == (2, 16 * 9) == (2, num_magnitude_features(16))
    assert torch.equal(f, y[..., :9].flatten(1))
    assert magnitude_features(y, half_spectrum=False).shape == (2, 256)
    assert torch.allclose(magnitude_features(y, input_transform="log1p"), torch.log1p(f))


@pytest.mark.parametrize(("n", "pad", "mult"), [(28, 2, (2, 2)), (32, 4, (1,)), (64, 8, (0.25,))])
def test_wavelet_packet_model_shapes(n: int, pad: int, mult: tuple[float, ...]) -> None:
    model = PRDADWaveletPacket(image_size=n, pad=pad, levels=2, width_multipliers=mult)
    y = _y(2, n, pad)
    out = model(y)
    assert out.shape == (2, 1, n, n)
    assert (out > 0).all() and (out < 1).all()
    assert model.predict_coefficients(y).shape == (2, 16, n // 4, n // 4)
    assert model.mlp.in_features == (n + 2 * pad) * ((n + 2 * pad) // 2 + 1)
    assert not any("decoder" in k for k in model.state_dict())  # fixed transform, not saved/trained


def test_wavelet_packet_model_decoder_is_exact_inverse() -> None:
    model = PRDADWaveletPacket(
        image_size=16, pad=2, levels=2, width_multipliers=(1,), output_activation="none"
    )
    x = smooth_images(2, 16)
    assert torch.allclose(model.decode(haar_packet_forward(x, 2)), x, atol=1e-6)
    clamp = PRDADWaveletPacket(image_size=16, pad=2, width_multipliers=(1,), output_activation="clamp")
    clamped = clamp.decode(haar_packet_forward(3 * x - 1, 2))
    assert torch.allclose(clamped, (3 * x - 1).clamp(0, 1), atol=1e-6)
    assert clamped.min() == 0 and clamped.max() == 1


def test_wavelet_packet_model_invalid() -> None:
    with pytest.raises(ValueError, match="levels"):
        PRDADWaveletPacket(image_size=28, levels=3)
    with pytest.raises(ValueError, match="sigmoid"):
        PRDADWaveletPacket(image_size=16, output_activation="tanh")
    with pytest.raises(ValueError, match="shape"):
        PRDADWaveletPacket(image_size=16, pad=2, width_multipliers=(1,))(_y(2, 16, 4))


def test_tiny_prdad_overfits_64_images() -> None:
    torch.manual_seed(0)
    n, pad = 16, 2
    x = smooth_images(64, n)
    y = FourierMagnitude(pad)(x)
    model = PRDADWaveletPacket(image_size=n, pad=pad, levels=2, width_multipliers=(2,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = Rot180InvariantLoss()
    losses = []
    for _ in range(80):
        loss = loss_fn(model(y), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5, losses[::10]
    model.eval()
    with torch.no_grad():
        assert loss_fn(model(y), x).item() < losses[0] / 5


def test_conv_blocks_shapes() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert ConvDoubleBlock(3, 5, "prelu", "zeros")(x).shape == (2, 5, 8, 8)
    assert DownConvBlock(3, 5)(x).shape == (2, 5, 4, 4)
    assert UpConvBlock(3, 5)(x).shape == (2, 5, 16, 16)
    with pytest.raises(ValueError, match="relu"):
        ConvDoubleBlock(3, 5, activation="gelu")
    with pytest.raises(ValueError, match="padding_mode"):
        ConvDoubleBlock(3, 5, padding_mode="circular_typo")


@pytest.mark.parametrize("n", [28, 32])
def test_autoencoder_shapes(n: int) -> None:
    ae = ConvAutoEncoder(channels=(8, 16, 32), code_channels=4)
    x = smooth_images(2, n)
    x_hat, code = ae(x)
    assert x_hat.shape == x.shape
    assert code.shape == (2, *ae.code_shape(n)) == (2, 4, 4, 4)
    assert (x_hat > 0).all() and (x_hat < 1).all()
    assert ae.decode(code).shape == (2, 1, 32, 32)


def test_default_autoencoder_code_shape() -> None:
    ae = ConvAutoEncoder()
    assert ae.code_shape(32) == (32, 4, 4) and ae.code_shape(64) == (32, 8, 8)
    x_hat, code = ae(smooth_images(2, 32))
    assert x_hat.shape == (2, 1, 32, 32) and code.shape == (2, 32, 4, 4)


@pytest.mark.parametrize(("n", "pad"), [(28, 2), (32, 4)])
def test_prdad_autoencoder_shapes_and_gradients(n: int, pad: int) -> None:
    ae = ConvAutoEncoder(channels=(8, 16, 32), code_channels=4)
    model = PRDADAutoEncoder(image_size=n, pad=pad, autoencoder=ae, width_multipliers=(1,))
    y = _y(2, n, pad)
    assert model.predict_code(y).shape == (2, 4, 4, 4)
    out = model(y)
    assert out.shape == (2, 1, n, n)
    target = smooth_images(2, n)
    Rot180InvariantLoss()(out, target).backward()
    assert model.mlp.head.weight.grad is not None and model.mlp.head.weight.grad.abs().sum() > 0
    assert model.autoencoder is ae


def test_rot180_loss_is_symmetric_for_models() -> None:
    # sanity: the loss used for PR-DAD cannot tell a prediction from its rotation
    x = smooth_images(3, 16)
    pred = smooth_images(3, 16, seed=1)
    loss = Rot180InvariantLoss()
    assert torch.allclose(loss(pred, x), loss(rot180(pred), x))
