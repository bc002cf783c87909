"""PR-DAD networks: shapes, wiring, and a tiny overfit run."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losses.rot180 import Rot180InvariantLoss
from models.prdad import (
    ConvAutoEncoder,
    ConvDoubleBlock,
    DownConvBlock,
    FeatureConvNet,
    MagnitudeMLP,
    MLPBlock,
    PRDADAutoEncoder,
    PRDADWaveletPacket,
    UpConvBlock,
    equalised_hidden_widths,
    hidden_widths,
    magnitude_features,
    num_magnitude_features,
)
from operators.fourier import FourierMagnitude, rot180
from operators.wavelet_packet import haar_packet_forward, haar_packet_matrix
from tests.conftest import compose_config

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
    for block in (*mlp.blocks, mlp.head):  # the third block is a full block too, not a bare Linear
        assert isinstance(block, MLPBlock)
        assert [type(m) for m in block] == [nn.Linear, nn.BatchNorm1d, nn.PReLU]
    assert MagnitudeMLP(10, 7, hidden_features=(5,)).hidden_features == (5,)
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
    assert model.predictor.mlp.in_features == (n + 2 * pad) * ((n + 2 * pad) // 2 + 1)
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
    ae = ConvAutoEncoder(channels=(8, 16, 32), code_channels=4, downsamplings=3)
    x = smooth_images(2, n)
    x_hat, code = ae(x)
    assert x_hat.shape == x.shape
    assert code.shape == (2, *ae.code_shape(n)) == (2, 4, 4, 4)
    assert (x_hat > 0).all() and (x_hat < 1).all()
    assert ae.decode(code).shape == (2, 1, 32, 32)


def test_default_autoencoder_code_is_over_sampled() -> None:
    # the authors' AeConv: widths 16, 32, 64, two poolings, a 64 x 8 x 8 code for 32 x 32 images
    ae = ConvAutoEncoder()
    assert ae.code_shape(32) == (64, 8, 8) and ae.code_shape(28) == (64, 7, 7)
    x_hat, code = ae(smooth_images(2, 32))
    assert x_hat.shape == (2, 1, 32, 32) and code.shape == (2, 64, 8, 8)
    assert code[0].numel() > x_hat[0].numel()  # 4096 code values for 1024 pixels
    pooled = [type(block) for block in ae.encoder[:-1]]
    assert pooled == [ConvDoubleBlock, DownConvBlock, DownConvBlock]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=dad_ae", "data=fashion_mnist"],
        ["model=dad_ae", "data=mnist"],
        ["experiment=prdad_ae"],
        ["experiment=prdad_ae", "data=mnist"],
    ],
)
def test_configured_autoencoder_code_is_larger_than_the_image(overrides: list[str]) -> None:
    cfg = compose_config(overrides)
    ae = ConvAutoEncoder(**{k: v for k, v in cfg.model.autoencoder.items() if k != "_target_"})
    n = cfg.data.image_size
    assert math.prod(ae.code_shape(n)) > n * n


@pytest.mark.parametrize(("n", "pad"), [(28, 2), (32, 4)])
def test_prdad_autoencoder_shapes_and_gradients(n: int, pad: int) -> None:
    ae = ConvAutoEncoder(channels=(8, 16, 32), code_channels=4, downsamplings=3)
    model = PRDADAutoEncoder(image_size=n, pad=pad, autoencoder=ae, width_multipliers=(1,), conv_widths=(4,))
    y = _y(2, n, pad)
    assert model.predict_code(y).shape == (2, 4, 4, 4)
    out = model(y)
    assert out.shape == (2, 1, n, n)
    target = smooth_images(2, n)
    Rot180InvariantLoss()(out, target).backward()
    head = model.predictor.mlp.head[0].weight.grad
    assert head is not None and head.abs().sum() > 0
    assert model.autoencoder is ae


def test_rot180_loss_is_symmetric_for_models() -> None:
    # sanity: the loss used for PR-DAD cannot tell a prediction from its rotation
    x = smooth_images(3, 16)
    pred = smooth_images(3, 16, seed=1)
    loss = Rot180InvariantLoss()
    assert torch.allclose(loss(pred, x), loss(rot180(pred), x))


def test_prdad_i_is_mlp_then_convnet_then_haar() -> None:
    """The lecture's network: 3 FC blocks -> 16 x 8 x 8 -> 3 double-conv blocks (the authors' x2 widths) ->
    1x1 conv -> inverse Haar packet."""
    model = PRDADWaveletPacket(image_size=32, pad=4)
    mlp, convnet = model.predictor.mlp, model.predictor.convnet
    assert mlp.hidden_features == (1680, 3360) and mlp.out_features == 16 * 8 * 8  # 40 x 21 inputs x2, x2
    assert isinstance(convnet, FeatureConvNet)
    blocks = [m for m in convnet if isinstance(m, ConvDoubleBlock)]
    assert [b[0].out_channels for b in blocks] == [32, 64, 128] and blocks[0][0].in_channels == 16
    assert isinstance(convnet[-1], nn.Conv2d) and convnet[-1].kernel_size == (1, 1)
    assert convnet[-1].out_channels == 16 and model.coeff_shape == (16, 8, 8)


def _stage(model: PRDADWaveletPacket):
    """What follows the MLP, seen from the pixel domain: u (B, 1, n, n) -> image (identity: u is the feature
    map; Haar: the feature map is the packet of u)."""
    if model.decoder_name == "identity":
        return lambda u: model.decode(model.predictor.convnet(u))
    return lambda u: model.decode(model.predictor.convnet(haar_packet_forward(u, model.levels)))


@torch.no_grad()
def test_identity_and_haar_decoders_differ_as_functions() -> None:
    """With the ConvNet in, the stage after the MLP commutes with 1-pixel image shifts (away from borders and
    the wrap seam) for the identity decoder, and not for the Haar decoder, whose ConvNet works on 4 x 4
    pixel cells: no identity-decoder weights reproduce a Haar-decoder net. (The old net -- a Linear, then
    the inverse packet -- had the stage H^-1 H = identity here: this test would have failed on it.)"""
    torch.manual_seed(0)
    u = torch.rand(2, 1, 32, 32)
    shifted = torch.roll(u, 1, dims=-1)
    inner = (..., slice(8, 24), slice(8, 24))  # receptive field: 6 convs of 3 x 3 (radius 6 pixels)
    for decoder, commutes in (("identity", True), ("haar", False)):
        model = PRDADWaveletPacket(32, 4, decoder=decoder, output_activation="none").eval()
        for m in model.modules():  # non-trivial BatchNorm statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        stage = _stage(model)
        gap = (stage(shifted) - torch.roll(stage(u), 1, dims=-1))[inner].abs().max()
        scale = stage(u)[inner].std()
        assert (gap < 1e-5 * scale) if commutes else (gap > 0.1 * scale), (decoder, gap, scale)


@torch.no_grad()
def test_haar_decoder_is_absorbed_by_the_last_1x1_conv() -> None:
    """The inverse Haar packet = pixel_shuffle after a fixed orthogonal per-cell map M^T; the ConvNet ends in
    a learned 1x1 conv, so W -> M^T W turns a Haar-decoder net into an equal pixel-shuffle-decoder net: the
    two are one function class (``decoder=shuffle`` measures only the parametrisation)."""
    torch.manual_seed(1)
    haar = PRDADWaveletPacket(16, 2, width_multipliers=(1,)).eval()
    shuffle = PRDADWaveletPacket(16, 2, width_multipliers=(1,), decoder="shuffle").eval()
    shuffle.load_state_dict(haar.state_dict())
    m_t = haar_packet_matrix(2).T
    last_h, last_s = haar.predictor.convnet[-1], shuffle.predictor.convnet[-1]
    last_s.weight.copy_(torch.einsum("kc,cihw->kihw", m_t, last_h.weight))
    last_s.bias.copy_(m_t @ last_h.bias)
    y = _y(3, 16, 2)
    torch.testing.assert_close(shuffle(y), haar(y), atol=1e-6, rtol=1e-5)
    assert (
        PRDADWaveletPacket(16, 2, width_multipliers=(1,), decoder="shuffle")(y) - haar(y)
    ).abs().max() > 1e-3


@pytest.mark.parametrize("transform", ["idct", "ifft"])
def test_inverse_transform_in_the_output_path(transform: str) -> None:
    """The lecture's iFFT / iDCT ablation: a fixed inverse transform of the MLP's output per feature-map
    channel, before the ConvNet; the MLP keeps the baseline's weight count."""
    scipy_fft = pytest.importorskip("scipy.fft")
    base = PRDADWaveletPacket(32, 4, width_multipliers=(1, 1))
    model = PRDADWaveletPacket(32, 4, width_multipliers=(1, 1), inverse_transform=transform).eval()
    count = lambda m: sum(p.numel() for p in m.predictor.mlp.parameters())  # noqa: E731
    assert abs(count(model) - count(base)) < 1e-3 * count(base)
    feats = model.features(_y(2, 32, 4))
    z = model.predictor.mlp(feats).detach().double()
    got = model.predictor.feature_map(feats).detach().double()
    assert got.shape == (2, 16, 8, 8)
    if transform == "idct":
        want = scipy_fft.idctn(z.reshape(2, 16, 8, 8).numpy(), norm="ortho", axes=(-2, -1))
    else:
        spectrum = z.reshape(2, 16, 8, 5, 2).numpy()
        want = scipy_fft.irfft2(spectrum[..., 0] + 1j * spectrum[..., 1], s=(8, 8), norm="ortho")
    torch.testing.assert_close(got, torch.from_numpy(want), atol=1e-4, rtol=1e-4)
    assert model(_y(2, 32, 4)).shape == (2, 1, 32, 32)


def test_equalised_hidden_widths_keep_the_weight_count() -> None:
    def weights(widths: tuple[int, ...]) -> int:
        return sum(a * b for a, b in itertools.pairwise(widths))

    base = weights((840, *hidden_widths(840, (2, 2)), 1024))
    for new_in, new_out in ((1680, 1024), (840, 1280), (2440, 1024)):
        hidden = equalised_hidden_widths(840, 1024, new_in, new_out, (2, 2))
        assert abs(weights((new_in, *hidden, new_out)) - base) < 2e-3 * base, (new_in, new_out, hidden)
