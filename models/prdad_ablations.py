"""Ablations of PR-DAD (Dekel & Gugel, ICFSP 2022): what the MLP input, the MLP itself and a classical
refinement add.

* :class:`PRDADFourierBranch`: PR-DAD I with an image-domain branch in the MLP *input*, the zero-phase inverse
  FFT (``branch="ifft"``) or inverse DCT (``branch="idct"``) of the magnitudes, at PR-DAD I's weight count.
  (The lecture's iFFT/iDCT ablation -- a fixed inverse transform in the network's output path -- is
  ``PRDADWaveletPacket(inverse_transform=...)``; the identity / shuffle decoders are ``decoder=...`` there.)
* :class:`ConvOnlyPR`: no MLP: a small convolutional encoder/decoder from the (fftshifted, ``log1p``)
  magnitude map to the image.
* :class:`RefinedPR`: "actual phase recovery": a (trained, frozen) network's output as the start of ER / HIO
  iterations against the measured magnitudes (inference only).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from algorithms.phase_retrieval import ClassicalPhaseRetrieval
from framework.checkpoint_io import load_net_weights
from framework.errors import UserError
from models.prdad import (
    OUTPUT_ACTIVATIONS,
    ConvDoubleBlock,
    DownConvBlock,
    MagnitudePredictor,
    PRDADWaveletPacket,
    UpConvBlock,
    apply_output_activation,
    equalised_hidden_widths,
    idct_matrix,
    magnitude_features,
    num_magnitude_features,
)
from operators.fourier import crop_center

__all__ = [
    "BRANCHES",
    "INPUT_MODES",
    "ConvOnlyPR",
    "PRDADFourierBranch",
    "RefinedPR",
    "idct_matrix",
]

BRANCHES: tuple[str, ...] = ("ifft", "idct")
INPUT_MODES: tuple[str, ...] = ("resize", "crop")


class PRDADFourierBranch(PRDADWaveletPacket):
    """PR-DAD I whose MLP also sees an image-domain transform of the magnitudes (zero phase): the *input*
    branch variant (``experiment=ablation_ifft_input`` / ``ablation_idct_input``); the lecture's ablation puts
    the fixed transform in the output path instead (``PRDADWaveletPacket(inverse_transform=...)``).

    The MLP input is ``[magnitude_features(y), b(y)]`` with ``b = Re IFFT2_ortho(y)`` (``branch="ifft"``; real
    and centro-symmetric like ``y``, so only its non-redundant half is used when ``half_spectrum``) or
    ``b = IDCT2_ortho(y)`` (``branch="idct"``, all m x m values; a precomputed matrix buffer). With
    ``equalise_parameters`` the first hidden width shrinks so the MLP keeps PR-DAD I's weight count
    (:func:`~models.prdad.equalised_hidden_widths`): a row then says what the branch adds, not what more
    weights add. The rest (ConvNet, Haar packet decoder, output activation) is :class:`PRDADWaveletPacket`.

    Args:
        branch: ``"ifft"`` or ``"idct"``. equalise_parameters: see above. Others: as
            :class:`PRDADWaveletPacket`.
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
        branch: str = "ifft",
        equalise_parameters: bool = True,
        conv_widths: tuple[int, ...] | None = None,
        activation: str = "prelu",
        padding_mode: str = "replicate",
    ) -> None:
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        m = image_size + 2 * pad
        self.branch = branch
        self.branch_half = half_spectrum and branch == "ifft"
        self.equalise_parameters = equalise_parameters
        self.branch_features = num_magnitude_features(m, self.branch_half)
        super().__init__(
            image_size,
            pad,
            levels,
            width_multipliers,
            half_spectrum,
            dropout,
            output_activation,
            input_transform,
            "haar",
            conv_widths,
            activation,
            padding_mode,
        )
        self.idct: Tensor | None
        self.register_buffer("idct", idct_matrix(m) if branch == "idct" else None, persistent=False)

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
        total = in_features + self.branch_features
        out = math.prod(self.coeff_shape)
        hidden = (
            equalised_hidden_widths(in_features, out, total, out, width_multipliers)
            if self.equalise_parameters
            else None
        )
        return MagnitudePredictor(
            total,
            self.coeff_shape,
            self.coeff_shape[0],
            width_multipliers,
            dropout,
            conv_widths,
            activation,
            padding_mode,
            inverse_transform,
            hidden_features=hidden,
        )

    def branch_image(self, y: Tensor) -> Tensor:
        """The zero-phase image-domain transform of y: (B, 1, m, m) -> (B, 1, m, m)."""
        if self.idct is None:
            return torch.fft.ifft2(y.float(), norm="ortho").real
        d = self.idct.to(y.dtype)
        return d.T @ y @ d

    def features(self, y: Tensor) -> Tensor:
        self._check_input(y)
        b = self.branch_image(y)
        if self.branch_half:
            b = b[..., : b.shape[-1] // 2 + 1]
        return torch.cat(
            [magnitude_features(y, self.half_spectrum, self.input_transform), b.flatten(1).to(y.dtype)], dim=1
        )


class ConvOnlyPR(nn.Module):
    """Conv-only phase retrieval (no MLP): y (B, 1, m, m) -> x_hat (B, 1, n, n).

    The input map is ``log1p(fftshift(y))`` brought to n x n (``input_mode="resize"``: bilinear; ``"crop"``:
    the central n x n frequencies), edge-padded to a multiple of ``2**len(channels)``. A U-Net-like
    encoder (:class:`DownConvBlock` per width), a :class:`ConvDoubleBlock` bottleneck, a decoder
    (:class:`UpConvBlock` per width, reversed, plus the encoder's features at that scale when
    ``skip_connections``), a 1x1 conv and the output activation; cropped back to n x n.

    Args:
        image_size: n. pad: zero-padding per side (m = n + 2 * pad).
        channels: encoder widths, one per scale (depth = len(channels)).
        input_mode: ``"resize"`` or ``"crop"`` (see above).
        activation: ``"relu"`` or ``"prelu"``; padding_mode: ``"replicate"`` or ``"zeros"`` (conv blocks).
        skip_connections: add the encoder features to the decoder's at each scale.
        output_activation: ``"sigmoid"``, ``"clamp"`` or ``"none"``.
    """

    def __init__(
        self,
        image_size: int = 32,
        pad: int = 4,
        channels: tuple[int, ...] = (32, 64, 128),
        input_mode: str = "resize",
        activation: str = "prelu",
        padding_mode: str = "replicate",
        skip_connections: bool = True,
        output_activation: str = "sigmoid",
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must be a non-empty tuple of widths")
        if image_size < 1 or pad < 0:
            raise ValueError(f"need image_size >= 1 and pad >= 0, got image_size={image_size}, pad={pad}")
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}"
            )
        self.image_size, self.pad = image_size, pad
        self.measured_size = image_size + 2 * pad
        self.depth = len(channels)
        self.input_mode = input_mode
        self.skip_connections = skip_connections
        self.output_activation = output_activation
        widths = (1, *channels)
        self.down = nn.ModuleList(
            DownConvBlock(widths[i], widths[i + 1], activation, padding_mode) for i in range(self.depth)
        )
        self.bottleneck = ConvDoubleBlock(channels[-1], channels[-1], activation, padding_mode)
        up_widths = (channels[-1], *reversed(channels))
        self.up = nn.ModuleList(
            UpConvBlock(a, b, activation, padding_mode) for a, b in itertools.pairwise(up_widths)
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def magnitude_map(self, y: Tensor) -> Tensor:
        """``log1p(fftshift(y))`` at n x n (resized or centre-cropped): (B, 1, m, m) -> (B, 1, n, n)."""
        m, n = self.measured_size, self.image_size
        if y.ndim != 4 or y.shape[1:] != (1, m, m):
            raise ValueError(f"y must have shape (B, 1, {m}, {m}), got {tuple(y.shape)}")
        h = torch.log1p(torch.fft.fftshift(y, dim=(-2, -1)))
        if m == n:
            return h
        if self.input_mode == "crop":
            return crop_center(h, n)
        return F.interpolate(h, size=(n, n), mode="bilinear", align_corners=False)

    def forward(self, y: Tensor) -> Tensor:
        h = self.magnitude_map(y)
        n, r = self.image_size, 2**self.depth
        p = math.ceil(n / r) * r - n
        if p:
            h = F.pad(h, (p // 2, p - p // 2, p // 2, p - p // 2), mode="replicate")
        skips = []
        for block in self.down:
            conv, pool = block[0], block[1]
            h = conv(h)
            skips.append(h)
            h = pool(h)
        h = self.bottleneck(h)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            h = block(h)
            if self.skip_connections:
                h = h + skip
        return apply_output_activation(crop_center(self.head(h), n), self.output_activation)


class RefinedPR(nn.Module):
    """A network's estimate refined by classical phase retrieval: y -> x0 = net(y) -> ER / HIO from x0,
    optionally averaged with x0: ``x_hat = w * refined + (1 - w) * x0`` (``output_weight`` w, 1: the
    refinement alone). The two estimates err differently (the net towards the class mean, the iterations
    towards a sharper, measurement-consistent image), so an average chosen on validation images lowers
    the MSE (``benchmarks/tune_refinement.py``).

    ``refiner`` is a :class:`ClassicalPhaseRetrieval` with one start (``x0``): ``iterations`` steps of
    ``algorithm`` against the measured magnitudes y, then ``final_er_iterations`` ER steps (at least one).
    Inference only: no gradient flows, the wrapped net is frozen (``requires_grad=False``, always in eval
    mode), so a run with this model has nothing to train and is tested directly.

    Args:
        net: the network giving x0 (e.g. :class:`PRDADWaveletPacket`), built with its training arguments.
        image_size: n. pad: zero-padding per side (m = n + 2 * pad).
        algorithm: ``"er"`` or ``"hio"`` (or ``"raar"``). iterations: main iterations.
        beta: HIO / RAAR feedback (None: the algorithm's default). final_er_iterations: ER read-out steps.
        checkpoint: a Lightning ``.ckpt`` whose ``net.`` weights are loaded into ``net`` (None: keep them).
        clamp_output: clamp the refined image to [0, 1].
        upper: project the iterates onto ``x <= upper`` as well (1: images in [0, 1]; None: off).
        output_weight: w of the average above, in [0, 1].
    """

    def __init__(
        self,
        net: nn.Module,
        image_size: int = 32,
        pad: int = 4,
        algorithm: str = "er",
        iterations: int = 200,
        beta: float | None = None,
        final_er_iterations: int = 20,
        checkpoint: str | None = None,
        clamp_output: bool = True,
        upper: float | None = None,
        output_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= output_weight <= 1.0:
            raise UserError(f"model.output_weight={output_weight} must be in [0, 1]")
        self.net = net
        self.output_weight = output_weight
        self.refiner = ClassicalPhaseRetrieval(
            algorithm,
            image_size,
            pad,
            iterations,
            beta,
            1,
            final_er_iterations,
            clamp_output=clamp_output,
            upper=upper,
        )
        if checkpoint:
            load_net_weights(self.net, checkpoint)
        self.net.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> RefinedPR:
        super().train(mode)
        self.net.eval()  # frozen: BatchNorm / dropout always in inference mode
        return self

    @torch.no_grad()
    def forward_both(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """(net output x0, refined image), both (B, 1, n, n): what the refinement adds."""
        x0 = self.net(y).float()
        return x0, self.refiner(y.float(), x0)

    def forward(self, y: Tensor) -> Tensor:
        x0, refined = self.forward_both(y)
        w = self.output_weight
        return refined if w == 1.0 else w * refined + (1.0 - w) * x0
