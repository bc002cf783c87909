"""PR-DAD networks: Fourier magnitudes -> image through a (fixed or learned) auto-decoder.

Dekel & Gugel, "Phase retrieval via deep auto-decoders", ICFSP 2022 (code: gugas81/pr-dad).

* PR-DAD I (:class:`PRDADWaveletPacket`): an MLP maps the magnitudes ``y`` to the coefficients of a fixed
  orthonormal full-depth Haar wavelet packet; the decoder is the exact inverse packet transform.
* PR-DAD II (:class:`PRDADAutoEncoder`): an MLP maps ``y`` to the latent code of a convolutional
  auto-encoder (:class:`ConvAutoEncoder`, trained on images) and the AE decoder produces the image.

Magnitude features (:func:`magnitude_features`): ``|F x|`` of a real image is centro-symmetric
(``y[k] = y[-k]``), so with ``half_spectrum=True`` only the non-redundant half ``y[..., : m // 2 + 1]`` (the
``rfft2`` layout) is used; ``input_transform="log1p"`` applies ``log(1 + y)`` to compress the large DC /
low-frequency values (the model default: on a 64-image overfit test it reached a ~1.4x lower loss than
``"none"`` after 200 Adam steps), ``"none"`` keeps ``y`` (the first BatchNorm then handles the scale).
The result is flattened to (B, C * m * m') features.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from operators.wavelet_packet import HaarWaveletPacket

__all__ = [
    "INPUT_TRANSFORMS",
    "OUTPUT_ACTIVATIONS",
    "ConvAutoEncoder",
    "ConvDoubleBlock",
    "DownConvBlock",
    "MLPBlock",
    "MagnitudeMLP",
    "PRDADAutoEncoder",
    "PRDADWaveletPacket",
    "UpConvBlock",
    "magnitude_features",
    "num_magnitude_features",
]

INPUT_TRANSFORMS: tuple[str, ...] = ("none", "log1p")
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "clamp", "none")
ACTIVATIONS: tuple[str, ...] = ("relu", "prelu")
PADDING_MODES: tuple[str, ...] = ("replicate", "zeros")


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


def _activation(name: str, channels: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "prelu":
        return nn.PReLU(channels)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def _check_multipliers(width_multipliers: tuple[float, ...]) -> None:
    if any(w <= 0 for w in width_multipliers):
        raise ValueError(f"width_multipliers must be positive, got {width_multipliers}")


class MLPBlock(nn.Sequential):
    """Linear -> BatchNorm1d -> PReLU (-> Dropout if ``dropout > 0``)."""

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
    """MLP ``in -> in*w1 -> in*w1*w2 -> ... -> out``: one :class:`MLPBlock` per multiplier, then a Linear.

    The default ``(2, 2)`` gives the PR-DAD widths "x2, x2" (in -> 2 in -> 4 in -> out).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width_multipliers: tuple[float, ...] = (2, 2),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_multipliers(width_multipliers)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        blocks: list[nn.Module] = []
        width = in_features
        for mult in width_multipliers:
            next_width = max(1, round(width * mult))
            blocks.append(MLPBlock(width, next_width, dropout))
            width = next_width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, out_features)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(x))


class PRDADWaveletPacket(nn.Module):
    """PR-DAD I: y (B, 1, m, m) -> MLP -> Haar packet coeffs (B, 4**L, n/2**L, n/2**L) -> x_hat (B, 1, n, n).

    Args:
        image_size: n (divisible by ``2**levels``). pad: zero-padding per side (m = n + 2 * pad).
        levels: depth L of the fixed full-depth Haar wavelet packet decoder.
        width_multipliers, dropout: :class:`MagnitudeMLP` hidden widths / dropout.
        half_spectrum: use only ``y[..., : m // 2 + 1]`` (centro-symmetry of ``|F x|``).
        output_activation: ``"sigmoid"``, ``"clamp"`` (to [0, 1]) or ``"none"``, applied to the decoded image.
        input_transform: ``"none"`` or ``"log1p"`` on ``y`` (see module docstring).
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
    ) -> None:
        super().__init__()
        if levels < 1 or image_size % (2**levels):
            raise ValueError(
                f"need levels >= 1 and image_size divisible by 2**levels, got {image_size=}, {levels=}"
            )
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(f"input_transform must be one of {INPUT_TRANSFORMS}, got {input_transform!r}")
        self.image_size = image_size
        self.pad = pad
        self.measured_size = image_size + 2 * pad
        self.levels = levels
        self.half_spectrum = half_spectrum
        self.output_activation = output_activation
        self.input_transform = input_transform
        self.coeff_shape = (4**levels, image_size // 2**levels, image_size // 2**levels)
        self.mlp = MagnitudeMLP(
            num_magnitude_features(self.measured_size, half_spectrum),
            image_size * image_size,
            width_multipliers,
            dropout,
        )
        self.decoder = HaarWaveletPacket(levels)

    def _check_input(self, y: Tensor) -> None:
        m = self.measured_size
        if y.ndim != 4 or y.shape[1:] != (1, m, m):
            raise ValueError(f"y must have shape (B, 1, {m}, {m}), got {tuple(y.shape)}")

    def predict_coefficients(self, y: Tensor) -> Tensor:
        """Wavelet packet coefficients (B, 4**L, n/2**L, n/2**L) predicted from y (before the decoder)."""
        self._check_input(y)
        feats = magnitude_features(y, self.half_spectrum, self.input_transform)
        return self.mlp(feats).view(y.shape[0], *self.coeff_shape)

    def decode(self, coeffs: Tensor) -> Tensor:
        """Inverse Haar packet + output activation: (B, 4**L, h, w) -> (B, 1, n, n)."""
        x = self.decoder.inverse(coeffs)
        if self.output_activation == "sigmoid":
            return torch.sigmoid(x)
        if self.output_activation == "clamp":
            return x.clamp(0.0, 1.0)
        return x

    def forward(self, y: Tensor) -> Tensor:
        return self.decode(self.predict_coefficients(y))


class ConvDoubleBlock(nn.Sequential):
    """[Conv3x3 (no bias) -> BatchNorm2d -> activation] x 2; keeps the spatial size."""

    def __init__(
        self, in_ch: int, out_ch: int, activation: str = "relu", padding_mode: str = "replicate"
    ) -> None:
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode=padding_mode, bias=False),
            nn.BatchNorm2d(out_ch),
            _activation(activation, out_ch),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, padding_mode=padding_mode, bias=False),
            nn.BatchNorm2d(out_ch),
            _activation(activation, out_ch),
        )


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

    Encoder: one :class:`DownConvBlock` per entry of ``channels`` (D = len(channels)), then a 1x1 conv to
    ``code_channels``. Decoder: 1x1 conv, :class:`UpConvBlock` through the reversed widths, 1x1 conv to
    ``in_channels``, sigmoid. Sizes not divisible by ``2**D`` (e.g. 28) are edge-padded to the next multiple
    (centred) by :meth:`encode`, and :meth:`decode` centre-crops back when given ``output_size``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: tuple[int, ...] = (32, 64, 128),
        code_channels: int = 32,
        activation: str = "prelu",
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must be a non-empty tuple of widths")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.in_channels = in_channels
        self.code_channels = code_channels
        self.depth = len(channels)
        widths = (in_channels, *channels)
        self.encoder = nn.Sequential(
            *(DownConvBlock(widths[i], widths[i + 1], activation, padding_mode) for i in range(self.depth)),
            nn.Conv2d(channels[-1], code_channels, 1),
        )
        up_widths = (*reversed(channels), channels[0])
        self.decoder = nn.Sequential(
            nn.Conv2d(code_channels, channels[-1], 1),
            *(UpConvBlock(a, b, activation, padding_mode) for a, b in itertools.pairwise(up_widths)),
            nn.Conv2d(channels[0], in_channels, 1),
            nn.Sigmoid(),
        )

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
            x = nn.functional.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")
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
    """PR-DAD II: y (B, 1, m, m) -> MLP -> AE code (B, K, h, w) -> AE decoder -> x_hat (B, 1, n, n).

    Args:
        image_size: n. pad: zero-padding per side (m = n + 2 * pad).
        autoencoder: the (usually pre-trained) :class:`ConvAutoEncoder`; a default one if None.
        width_multipliers, dropout: :class:`MagnitudeMLP` hidden widths / dropout.
        half_spectrum, input_transform: magnitude features (module docstring).
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
    ) -> None:
        super().__init__()
        if image_size < 1 or pad < 0:
            raise ValueError(f"need image_size >= 1 and pad >= 0, got image_size={image_size}, pad={pad}")
        if input_transform not in INPUT_TRANSFORMS:
            raise ValueError(f"input_transform must be one of {INPUT_TRANSFORMS}, got {input_transform!r}")
        self.autoencoder = autoencoder if autoencoder is not None else ConvAutoEncoder()
        if self.autoencoder.in_channels != 1:
            raise ValueError(f"autoencoder must have in_channels=1, got {self.autoencoder.in_channels}")
        self.image_size = image_size
        self.pad = pad
        self.measured_size = image_size + 2 * pad
        self.half_spectrum = half_spectrum
        self.input_transform = input_transform
        self.code_shape = self.autoencoder.code_shape(image_size)
        self.mlp = MagnitudeMLP(
            num_magnitude_features(self.measured_size, half_spectrum),
            math.prod(self.code_shape),
            width_multipliers,
            dropout,
        )

    def predict_code(self, y: Tensor) -> Tensor:
        """AE code (B, K, h, w) predicted from y (e.g. for a code loss against ``autoencoder.encode(x)``)."""
        m = self.measured_size
        if y.ndim != 4 or y.shape[1:] != (1, m, m):
            raise ValueError(f"y must have shape (B, 1, {m}, {m}), got {tuple(y.shape)}")
        feats = magnitude_features(y, self.half_spectrum, self.input_transform)
        return self.mlp(feats).view(y.shape[0], *self.code_shape)

    def forward(self, y: Tensor) -> Tensor:
        return self.autoencoder.decode(self.predict_code(y), self.image_size)
