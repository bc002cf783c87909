"""PR-DAD networks: Fourier magnitudes -> image through a (fixed or learned) auto-decoder.

Dekel & Gugel, "PR-DAD: Phase retrieval using deep auto-decoders", ICFSP 2022 (code: gugas81/pr-dad). The
lecture's phase-retrieval network, shared by both variants (:class:`MagnitudePredictor`):

1. MLP of three fully connected blocks (Linear + BatchNorm + PReLU), widths x2, x2, then the flattened size
   of a feature map -- the third is a full block too (:class:`MagnitudeMLP`);
2. reshape to the feature map (C, s, s); optionally a fixed inverse DCT / real inverse FFT of each channel
   (the lecture's "iFFT/iDCT component" ablation, ``inverse_transform``);
3. ConvNet: three double-conv blocks and a 1x1 conv to the decoder's channels (:class:`FeatureConvNet`);
4. the decoder:

* PR-DAD I (:class:`PRDADWaveletPacket`): the inverse of a fixed orthonormal full-depth Haar wavelet packet
  of depth L: the feature map is the (4**L, n / 2**L, n / 2**L) packet. Ablations: ``decoder="identity"``
  (the feature map is the image itself, (1, n, n): the ConvNet works on pixels, no wavelet domain) and
  ``decoder="shuffle"`` (the packet's geometry without its transform: ``pixel_shuffle``).
* PR-DAD II (:class:`PRDADAutoEncoder`): the decoder of a convolutional auto-encoder
  (:class:`ConvAutoEncoder`) trained on images; the feature map is its over-sampled code.

Sizes, from the authors' code (``models/phase_retrieval_predictor.py``, ``models/conv_autoencoder.py``): the
MLP's last block outputs ``inter_ch x s x s`` with ``inter_ch`` = the decoder's channels; the ConvNet's
blocks widen by ``predict_conv_multy_coeff = 2`` each (C -> 2C -> 4C -> 8C) and a 1x1 conv returns to C
(the default of ``conv_widths=None``). The Haar packet of depth 2 on 32x32 gives C = 16 at 8x8 (the
authors' MNIST Haar model, "deep3"), so the ConvNet is 16 -> 32 -> 64 -> 128 -> 16.

Why the Haar decoder is not a function-class change on its own: the full-depth Haar packet acts on disjoint
2**L x 2**L blocks, so its inverse is ``pixel_shuffle`` after a fixed orthogonal 1x1 map
(:mod:`operators.wavelet_packet`); the ConvNet's last layer is a learned 1x1 conv, which absorbs that map.
PR-DAD I's "wavelet domain" is therefore the ConvNet's geometry (it works on the 2**L-subsampled grid of
packet cells) plus the parametrisation it starts from; ``decoder="shuffle"`` measures the latter,
``decoder="identity"`` the former (tests/test_prdad_models.py pins both facts). Without the ConvNet and with
a bare Linear at the MLP's end, the whole decoder collapsed into that Linear.

Magnitude features (:func:`magnitude_features`): ``|F x|`` of a real image is centro-symmetric
(``y[k] = y[-k]``), so with ``half_spectrum=True`` only the non-redundant half ``y[..., : m // 2 + 1]`` (the
``rfft2`` layout, as the authors' ``use_rfft``) is used; ``input_transform="log1p"`` applies ``log(1 + y)``
to compress the large DC / low-frequency values (the model default: on a 64-image overfit test it reached a
~1.4x lower loss than ``"none"`` after 200 Adam steps), ``"none"`` keeps ``y``. The result is flattened to
(B, C * m * m') features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from operators.wavelet_packet import HaarWaveletPacket

__all__ = [
    "ACTIVATIONS",
    "DECODERS",
    "INPUT_TRANSFORMS",
    "INVERSE_TRANSFORMS",
    "OUTPUT_ACTIVATIONS",
    "ConvAutoEncoder",
    "ConvDoubleBlock",
    "DownConvBlock",
    "FeatureConvNet",
    "MLPBlock",
    "MagnitudeMLP",
    "MagnitudePredictor",
    "PRDADAutoEncoder",
    "PRDADWaveletPacket",
    "UpConvBlock",
    "apply_output_activation",
    "default_conv_widths",
    "equalised_hidden_widths",
    "hidden_widths",
    "idct_matrix",
    "magnitude_features",
    "num_magnitude_features",
]

INPUT_TRANSFORMS: tuple[str, ...] = ("none", "log1p")
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "clamp", "none")
ACTIVATIONS: tuple[str, ...] = ("relu", "prelu")
PADDING_MODES: tuple[str, ...] = ("replicate", "zeros")
INVERSE_TRANSFORMS: tuple[str, ...] = ("none", "idct", "ifft")
DECODERS: tuple[str, ...] = ("haar", "shuffle", "identity")


def num_magnitude_features(measured_size: int, half_spectrum: bool = True, channels: int = 1) -> int:
    """Feature count of :func:`magnitude_features`: ``C * m * (m // 2 + 1)`` (half) or ``C * m * m``."""
    return channels * measured_size * (measured_size // 2 + 1 if half_spectrum else measured_size)


def magnitude_features(y: Tensor, half_spectrum: bool = True, input_transform: str = "none") -> Tensor:
    """(B, C, m, m) magnitudes -> (B, F) features: optional half spectrum and ``log1p`` (module docstring)."""
    if input_transform not in INPUT_TRANSFORMS:
        raise ValueError(f"input_transform must be one of {INPUT_TRANSFORMS}, got {input_transform!r}")
    if half_spectrum:
        y = y[..., : y.shape[-1] // 2 + 1]
    if input_transform == "log1p":
        y = torch.log1p(y)
    return y.flatten(1)


def idct_matrix(size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The orthonormal DCT-II matrix ``D`` (size x size): ``dct(v) = D v``, ``idct(v) = D.T v``.

    ``D[k, j] = s_k cos(pi (2 j + 1) k / (2 size))``, ``s_0 = sqrt(1 / size)``, ``s_k = sqrt(2 / size)``; the
    2-D inverse (``scipy.fft.idctn(Y, norm="ortho")``) is ``D.T @ Y @ D``.
    """
    k = torch.arange(size, dtype=torch.float64)[:, None]
    j = torch.arange(size, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * j + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    d[0] /= math.sqrt(2.0)
    return d.to(dtype)


def _activation(name: str, channels: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def _check_multipliers(width_multipliers: tuple[float, ...]) -> None:
    if any(w <= 0 for w in width_multipliers):
        raise ValueError(f"width_multipliers must be positive, got {width_multipliers}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def hidden_widths(in_features: int, width_multipliers: tuple[float, ...]) -> tuple[int, ...]:
    """The hidden widths ``in*w1, in*w1*w2, ...`` (rounded, each at least 1)."""
    _check_multipliers(width_multipliers)
    widths, width = [], in_features
    for mult in width_multipliers:
        width = max(1, round(width * mult))
        widths.append(width)
    return tuple(widths)


def equalised_hidden_widths(
    base_in: int, base_out: int, in_features: int, out_features: int, width_multipliers: tuple[float, ...]
) -> tuple[int, ...]:
    """Hidden widths for an MLP ``in_features -> ... -> out_features`` with (to ~0.1 %) the weight count of
    the MLP ``base_in -> hidden_widths(base_in) -> base_out``: a larger input shrinks the first hidden width
    ``h1 -> h1 (base_in + h2) / (in + h2)``, a larger output the last ``hk -> hk (h(k-1) + base_out) /
    (h(k-1) + out)`` (h0 = the input, h(k+1) = the output), so an ablation row compares equal budgets."""
    widths = list(hidden_widths(base_in, width_multipliers))
    if not widths:
        return ()
    nxt = widths[1] if len(widths) > 1 else base_out
    widths[0] = max(1, round(widths[0] * (base_in + nxt) / (in_features + nxt)))
    prev = widths[-2] if len(widths) > 1 else in_features
    widths[-1] = max(1, round(widths[-1] * (prev + base_out) / (prev + out_features)))
    return tuple(widths)


class MLPBlock(nn.Sequential):
    """Linear -> BatchNorm1d -> PReLU (-> Dropout if ``dropout > 0``): the lecture's fully connected block."""

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [
            nn.Linear(in_features, out_features),
            nn.BatchNorm1d(out_features),
            nn.PReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class MagnitudeMLP(nn.Module):
    """MLP ``in -> in*w1 -> in*w1*w2 -> out``: one :class:`MLPBlock` per hidden width, and the last one to
    ``out`` a full :class:`MLPBlock` as well (``head``; the lecture's block #3, "output flatten features map
    size"). The default ``(2, 2)`` gives the widths "x2, x2"; ``hidden_features`` overrides the widths.
    ``dropout`` applies after the hidden blocks only."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width_multipliers: tuple[float, ...] = (2, 2),
        dropout: float = 0.0,
        hidden_features: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = hidden_widths(in_features, width_multipliers) if hidden_features is None else hidden_features
        if any(w < 1 for w in widths):
            raise ValueError(f"hidden_features must be positive, got {widths}")
        blocks: list[nn.Module] = []
        width = in_features
        for next_width in widths:
            blocks.append(MLPBlock(width, next_width, dropout))
            width = next_width
        self.blocks = nn.Sequential(*blocks)
        self.head = MLPBlock(width, out_features)
        self.in_features = in_features
        self.out_features = out_features
        self.hidden_features = tuple(widths)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(x))


class ConvDoubleBlock(nn.Sequential):
    """[Conv3x3 (no bias) -> BatchNorm2d -> activation] x 2; keeps the spatial size."""

    def __init__(
        self, in_ch: int, out_ch: int, activation: str = "relu", padding_mode: str = "replicate"
    ) -> None:
        _check_choice("padding_mode", padding_mode, PADDING_MODES)
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode=padding_mode, bias=False),
            nn.BatchNorm2d(out_ch),
            _activation(activation, out_ch),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, padding_mode=padding_mode, bias=False),
            nn.BatchNorm2d(out_ch),
            _activation(activation, out_ch),
        )


def default_conv_widths(channels: int, blocks: int = 3, multiplier: int = 2) -> tuple[int, ...]:
    """The authors' ConvNet widths ``C * 2, C * 4, C * 8`` for three blocks (``predict_conv_multy_coeff``)."""
    return tuple(channels * multiplier ** (i + 1) for i in range(blocks))


class FeatureConvNet(nn.Sequential):
    """The lecture's ConvNet: one :class:`ConvDoubleBlock` per width, then a 1x1 conv to ``out_channels``
    (linear, so the decoder gets signed values): (B, in, s, s) -> (B, out, s, s)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: tuple[int, ...],
        activation: str = "prelu",
        padding_mode: str = "replicate",
    ) -> None:
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"conv_widths must be a non-empty tuple of positive widths, got {widths}")
        chans = (in_channels, *widths)
        super().__init__(
            *(ConvDoubleBlock(chans[i], chans[i + 1], activation, padding_mode) for i in range(len(widths))),
            nn.Conv2d(widths[-1], out_channels, 1),
        )


class MagnitudePredictor(nn.Module):
    """|F| features (B, F) -> decoder input (B, C_out, s, s): :class:`MagnitudeMLP` -> reshape to the
    feature map ``feature_shape`` = (C, s, s) -> fixed inverse transform -> :class:`FeatureConvNet`.

    ``inverse_transform`` (the lecture's "iFFT/iDCT component" ablation; the authors' ``predict_type=
    'spectral'``): the MLP's output is read as the spectrum of each feature-map channel and a fixed inverse
    makes it spatial before the ConvNet. ``"idct"``: the orthonormal 2-D inverse DCT-II of each (s, s)
    channel (same size). ``"ifft"``: the MLP outputs ``C * s * (s // 2 + 1) * 2`` values, the real and
    imaginary parts of an ``rfft2`` layout, and ``irfft2(norm="ortho")`` returns the real (s, s) channel; with
    ``equalise_parameters`` the last hidden width shrinks so the MLP keeps the weight count of ``"none"``
    (:func:`equalised_hidden_widths`).
    """

    def __init__(
        self,
        in_features: int,
        feature_shape: tuple[int, int, int],
        out_channels: int,
        width_multipliers: tuple[float, ...] = (2, 2),
        dropout: float = 0.0,
        conv_widths: tuple[int, ...] | None = None,
        activation: str = "prelu",
        padding_mode: str = "replicate",
        inverse_transform: str = "none",
        equalise_parameters: bool = True,
        hidden_features: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        _check_choice("inverse_transform", inverse_transform, INVERSE_TRANSFORMS)
        c, h, w = feature_shape
        if inverse_transform != "none" and h != w:
            raise ValueError(f"inverse_transform needs a square feature map, got {feature_shape}")
        self.feature_shape = (c, h, w)
        self.inverse_transform = inverse_transform
        features = c * h * w
        out = c * h * (w // 2 + 1) * 2 if inverse_transform == "ifft" else features
        if hidden_features is None and out != features and equalise_parameters:
            hidden_features = equalised_hidden_widths(
                in_features, features, in_features, out, width_multipliers
            )
        self.mlp = MagnitudeMLP(in_features, out, width_multipliers, dropout, hidden_features)
        self.idct: Tensor | None
        self.register_buffer(
            "idct", idct_matrix(h) if inverse_transform == "idct" else None, persistent=False
        )
        widths = tuple(conv_widths) if conv_widths is not None else default_conv_widths(c)
        self.convnet = FeatureConvNet(c, out_channels, widths, activation, padding_mode)

    def feature_map(self, feats: Tensor) -> Tensor:
        """MLP output as the (B, C, s, s) feature map the ConvNet sees (after the fixed inverse transform)."""
        z = self.mlp(feats)
        c, h, w = self.feature_shape
        if self.inverse_transform == "ifft":
            spectrum = torch.view_as_complex(z.float().reshape(-1, c, h, w // 2 + 1, 2).contiguous())
            return torch.fft.irfft2(spectrum, s=(h, w), norm="ortho").to(z.dtype)
        z = z.reshape(-1, c, h, w)
        if self.idct is not None:
            d = self.idct.to(z.dtype)
            z = d.T @ z @ d
        return z

    def forward(self, feats: Tensor) -> Tensor:
        return self.convnet(self.feature_map(feats))


def apply_output_activation(x: Tensor, name: str) -> Tensor:
    """``"sigmoid"``, ``"clamp"`` (to [0, 1]) or ``"none"`` on the decoded image."""
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "clamp":
        return x.clamp(0.0, 1.0)
    return x


class PRDADWaveletPacket(nn.Module):
    """PR-DAD I: y (B, 1, m, m) -> :class:`MagnitudePredictor` -> Haar packet coefficients
    (B, 4**L, n/2**L, n/2**L) -> inverse packet -> x_hat (B, 1, n, n).

    Args:
        image_size: n (divisible by ``2**levels``). pad: zero-padding per side (m = n + 2 * pad).
        levels: depth L of the fixed full-depth Haar wavelet packet decoder.
        width_multipliers, dropout: :class:`MagnitudeMLP` hidden widths / dropout.
        half_spectrum: use only ``y[..., : m // 2 + 1]`` (centro-symmetry of ``|F x|``).
        output_activation: ``"sigmoid"``, ``"clamp"`` (to [0, 1]) or ``"none"``, applied to the decoded image.
        input_transform: ``"none"`` or ``"log1p"`` on ``y`` (see module docstring).
        decoder: ``"haar"`` (PR-DAD I), ``"identity"`` (ablation: feature map = the image, (1, n, n);
            ``levels`` unused) or ``"shuffle"`` (ablation: ``pixel_shuffle`` of the packet-shaped map).
        conv_widths: the ConvNet's block widths (None: the authors' C*2, C*4, C*8 of the feature channels C).
        activation, padding_mode: of the ConvNet's blocks.
        inverse_transform: ``"none"``, ``"idct"`` or ``"ifft"`` between the MLP and the ConvNet (ablation).
    """

    def __init__(
        self,
        image_size: int = 32,
        pad: int = 4,
        levels: int = 2,
        width_multipliers: tuple[float, ...] = (2, 2),
        half_spectrum: bool = True,
        dropout: float = 0.0,
        output_activation: str = "sigmoid",
        input_transform: str = "log1p",
        decoder: str = "haar",
        conv_widths: tuple[int, ...] | None = None,
        activation: str = "prelu",
        padding_mode: str = "replicate",
        inverse_transform: str = "none",
    ) -> None:
        super().__init__()
        _check_choice("decoder", decoder, DECODERS)
        if decoder != "identity" and (levels < 1 or image_size % (2**levels)):
            raise ValueError(
                f"need levels >= 1 and image_size divisible by 2**levels, got {image_size=}, {levels=}"
            )
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        _check_choice("output_activation", output_activation, OUTPUT_ACTIVATIONS)
        _check_choice("input_transform", input_transform, INPUT_TRANSFORMS)
        self.image_size = image_size
        self.pad = pad
        self.measured_size = image_size + 2 * pad
        self.levels = levels
        self.half_spectrum = half_spectrum
        self.output_activation = output_activation
        self.input_transform = input_transform
        self.decoder_name = decoder
        if decoder == "identity":
            self.coeff_shape = (1, image_size, image_size)
        else:
            self.coeff_shape = (4**levels, image_size // 2**levels, image_size // 2**levels)
        self.predictor = self._build_predictor(
            num_magnitude_features(self.measured_size, half_spectrum),
            width_multipliers,
            dropout,
            conv_widths,
            activation,
            padding_mode,
            inverse_transform,
        )
        self.decoder = HaarWaveletPacket(levels) if decoder == "haar" else None

    def _build_predictor(
        self,
        in_features: int,
        width_multipliers: tuple[float, ...],
        dropout: float,
        conv_widths: tuple[int, ...] | None,
        activation: str,
        padding_mode: str,
        inverse_transform: str,
    ) -> MagnitudePredictor:
        return MagnitudePredictor(
            in_features,
            self.coeff_shape,
            self.coeff_shape[0],
            width_multipliers,
            dropout,
            conv_widths,
            activation,
            padding_mode,
            inverse_transform,
        )

    def _check_input(self, y: Tensor) -> None:
        m = self.measured_size
        if y.ndim != 4 or y.shape[1:] != (1, m, m):
            raise ValueError(f"y must have shape (B, 1, {m}, {m}), got {tuple(y.shape)}")

    def features(self, y: Tensor) -> Tensor:
        """The MLP's input features of y (B, F)."""
        self._check_input(y)
        return magnitude_features(y, self.half_spectrum, self.input_transform)

    def predict_coefficients(self, y: Tensor) -> Tensor:
        """The decoder's input (B, *coeff_shape) predicted from y: packet coefficients for ``"haar"``."""
        return self.predictor(self.features(y))

    def decode(self, coeffs: Tensor) -> Tensor:
        """Decoder + output activation: (B, *coeff_shape) -> (B, 1, n, n)."""
        if self.decoder is not None:
            x = self.decoder.inverse(coeffs)
        elif self.decoder_name == "shuffle":
            x = F.pixel_shuffle(coeffs, 2**self.levels)
        else:
            x = coeffs
        return apply_output_activation(x, self.output_activation)

    def forward(self, y: Tensor) -> Tensor:
        return self.decode(self.predict_coefficients(y))


class DownConvBlock(nn.Sequential):
    """:class:`ConvDoubleBlock` then AvgPool2d(2): (B, in, H, W) -> (B, out, H/2, W/2)."""

    def __init__(
        self, in_ch: int, out_ch: int, activation: str = "relu", padding_mode: str = "replicate"
    ) -> None:
        super().__init__(ConvDoubleBlock(in_ch, out_ch, activation, padding_mode), nn.AvgPool2d(2))


class UpConvBlock(nn.Sequential):
    """Bilinear x2 upsampling then :class:`ConvDoubleBlock`: (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(
        self, in_ch: int, out_ch: int, activation: str = "relu", padding_mode: str = "replicate"
    ) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            ConvDoubleBlock(in_ch, out_ch, activation, padding_mode),
        )


class ConvAutoEncoder(nn.Module):
    """PR-DAD II image auto-encoder: x (B, C, n, n) -> code (B, K, n/2**D, n/2**D) -> x_hat in (0, 1).

    Encoder: one conv block per entry of ``channels``; the last ``downsamplings`` (D, default all) of them
    are :class:`DownConvBlock` (average-pooled), the first ones :class:`ConvDoubleBlock` at full resolution;
    then a 1x1 conv to ``code_channels``. Decoder, the mirror: 1x1 conv, per encoder block in reverse an
    :class:`UpConvBlock` (pooled ones) or a :class:`ConvDoubleBlock`, 1x1 conv to ``in_channels``, sigmoid.
    The authors' AE (``AeConv``, deep_ae=3, n_features=64): widths 16, 32, 64 with two poolings, a 64 x 8 x 8
    code for 32 x 32 images -- over-sampled (4096 values for 1024 pixels) and made sparse by the l1 term of
    the training loss. Sizes not divisible by ``2**D`` (e.g. 28) are edge-padded to the next multiple
    (centred) by :meth:`encode`, and :meth:`decode` centre-crops back when given ``output_size``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64),
        code_channels: int = 64,
        activation: str = "prelu",
        padding_mode: str = "replicate",
        downsamplings: int | None = 2,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must be a non-empty tuple of widths")
        _check_choice("activation", activation, ACTIVATIONS)
        depth = len(channels) if downsamplings is None else downsamplings
        if not 0 <= depth <= len(channels):
            raise ValueError(f"downsamplings must be in [0, {len(channels)}], got {downsamplings}")
        self.in_channels = in_channels
        self.code_channels = code_channels
        self.depth = depth
        pooled = [i >= len(channels) - depth for i in range(len(channels))]
        widths = (in_channels, *channels)
        self.encoder = nn.Sequential(
            *(
                (DownConvBlock if pooled[i] else ConvDoubleBlock)(
                    widths[i], widths[i + 1], activation, padding_mode
                )
                for i in range(len(channels))
            ),
            nn.Conv2d(channels[-1], code_channels, 1),
        )
        up: list[nn.Module] = [nn.Conv2d(code_channels, channels[-1], 1)]
        for i in reversed(range(len(channels))):
            out = channels[i - 1] if i > 0 else channels[0]
            block = UpConvBlock if pooled[i] else ConvDoubleBlock
            up.append(block(channels[i], out, activation, padding_mode))
        self.decoder = nn.Sequential(*up, nn.Conv2d(channels[0], in_channels, 1), nn.Sigmoid())

    def padded_size(self, image_size: int) -> int:
        """Image size rounded up to a multiple of ``2**depth``."""
        r = 2**self.depth
        return math.ceil(image_size / r) * r

    def code_shape(self, image_size: int) -> tuple[int, int, int]:
        """(code_channels, h, w) of the code of an image_size x image_size input."""
        s = self.padded_size(image_size) // 2**self.depth
        return (self.code_channels, s, s)

    def encode(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = self.padded_size(h) - h, self.padded_size(w) - w
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
        return self.encoder(x)

    def decode(self, code: Tensor, output_size: int | None = None) -> Tensor:
        x = self.decoder(code)
        if output_size is not None and output_size != x.shape[-1]:
            top = (x.shape[-2] - output_size) // 2
            left = (x.shape[-1] - output_size) // 2
            x = x[..., top : top + output_size, left : left + output_size]
        return x

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (x_hat, code), x_hat with the input's spatial size (square inputs)."""
        code = self.encode(x)
        return self.decode(code, x.shape[-1]), code


class PRDADAutoEncoder(nn.Module):
    """PR-DAD II: y (B, 1, m, m) -> :class:`MagnitudePredictor` -> AE code (B, K, h, w) -> AE decoder ->
    x_hat (B, 1, n, n).

    Args:
        image_size: n. pad: zero-padding per side (m = n + 2 * pad).
        autoencoder: the (usually pre-trained) :class:`ConvAutoEncoder`; a default one if None.
        width_multipliers, dropout: :class:`MagnitudeMLP` hidden widths / dropout.
        half_spectrum, input_transform: magnitude features (module docstring).
        conv_widths: the ConvNet's block widths (None: the authors' K*2, K*4, K*8 -- heavy for K = 64).
        activation, padding_mode: of the ConvNet's blocks.
    """

    def __init__(
        self,
        image_size: int = 32,
        pad: int = 4,
        autoencoder: ConvAutoEncoder | None = None,
        width_multipliers: tuple[float, ...] = (2, 2),
        half_spectrum: bool = True,
        dropout: float = 0.0,
        input_transform: str = "log1p",
        conv_widths: tuple[int, ...] | None = (64, 64, 64),
        activation: str = "prelu",
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        if image_size < 1 or pad < 0:
            raise ValueError(f"need image_size >= 1 and pad >= 0, got image_size={image_size}, pad={pad}")
        _check_choice("input_transform", input_transform, INPUT_TRANSFORMS)
        self.autoencoder = autoencoder if autoencoder is not None else ConvAutoEncoder()
        if self.autoencoder.in_channels != 1:
            raise ValueError(f"autoencoder must have in_channels=1, got {self.autoencoder.in_channels}")
        self.image_size = image_size
        self.pad = pad
        self.measured_size = image_size + 2 * pad
        self.half_spectrum = half_spectrum
        self.input_transform = input_transform
        self.code_shape = self.autoencoder.code_shape(image_size)
        self.predictor = MagnitudePredictor(
            num_magnitude_features(self.measured_size, half_spectrum),
            self.code_shape,
            self.code_shape[0],
            width_multipliers,
            dropout,
            conv_widths,
            activation,
            padding_mode,
        )

    def predict_code(self, y: Tensor) -> Tensor:
        """AE code (B, K, h, w) predicted from y (e.g. for a code loss against ``autoencoder.encode(x)``)."""
        m = self.measured_size
        if y.ndim != 4 or y.shape[1:] != (1, m, m):
            raise ValueError(f"y must have shape (B, 1, {m}, {m}), got {tuple(y.shape)}")
        return self.predictor(magnitude_features(y, self.half_spectrum, self.input_transform))

    def forward(self, y: Tensor) -> Tensor:
        return self.autoencoder.decode(self.predict_code(y), self.image_size)
