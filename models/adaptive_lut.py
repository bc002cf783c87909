"""Image-adaptive 3D LUTs (Zeng, Cai, Li, Cao, Zhang, "Learning Image-adaptive 3D Lookup Tables for High
Performance Photo Enhancement in Real-time", IEEE TPAMI 2020).

A small CNN looks at a thumbnail of the photo (256×256) and predicts the weights ``w`` of ``N`` learned basis
3D LUTs ``φ_n``; the fused LUT ``φ = Σ_n w_n φ_n`` is applied to the full-resolution photo by trilinear
lookup. The transform is global (the same colour always maps to the same colour), so its cost is one lookup
per pixel at any resolution, and it cannot hallucinate detail.

LUT layout (the paper's): ``lut[c, b, g, r]``, shape (3, D, D, D), node ``(r, g, b) = (i, j, k) / (D − 1)``;
channel 0 is the output red. The identity LUT holds ``lut[:, k, j, i] = (i, j, k) / (D − 1)``.

Trilinear lookup, for an input colour ``(r, g, b)`` in [0, 1]: ``u = r (D − 1)``, ``i = ⌊u⌋``,
``f = u − i`` (and likewise ``j, g'`` for green, ``k, h`` for blue); the output interpolates the 8
surrounding nodes, ``Σ_{δ ∈ {0,1}³} lut[:, k+δ_b, j+δ_g, i+δ_r] · (f or 1−f)(g' or 1−g')(h or 1−h)``.
Inputs outside [0, 1] are clamped to it.

:func:`apply_lut` uses ``torch.nn.functional.grid_sample`` on the LUT as a 5-D volume (N, 3, D_b, D_g, D_r):
the grid's last dimension is ``(x, y, z) = (r, g, b) · 2 − 1`` (x indexes the last, W axis), with
``align_corners=True`` so that −1 and +1 are the centres of the first and last nodes, and
``padding_mode="border"``. Measured against a hand-written 8-corner gather in torch on a 4000×3000 photo
(33³ LUT, 2 threads, a 2-core machine shared with other jobs, so CPU seconds are the steadier figure):
grid_sample 0.77 CPU-s, the gather 7.4 CPU-s (≈ 10×): grid_sample is one fused C++ loop over the pixels,
while the gather writes ~20 full-size intermediate tensors and ``index_select`` on 3-wide rows is slow.
PyTorch's 3-D CPU grid sampler parallelises over the batch only (``at::parallel_for(0, N, …)`` in
``aten/src/ATen/native/GridSampler.cpp``), so :func:`apply_lut` splits the pixels of each image into
``torch.get_num_threads()`` batch entries on the CPU: on 2 threads the 12-Mpx lookup then costs 0.47 + 0.44
CPU-s on the two threads instead of 0.72 CPU-s on one. Pillow's ``ImageFilter.Color3DLUT`` (C, 8-bit in and
out) is faster still for writing a photo: :func:`lut_to_pil_filter`.

Regularisers (the paper's Eq. 6-8, and its code, ``HuiZeng/Image-Adaptive-3DLUT`` ``TV_3D``): smoothness
``R_s = Σ_n TV(φ_n) + Σ_n w_n²`` and monotonicity ``R_m = Σ_n Σ ReLU(φ_n[.., i] − φ_n[.., i+1])`` along
each of the three input axes, weighted ``λ_s = 1e-4``, ``λ_m = 10``; see :func:`lut_tv`,
:func:`lut_monotonicity` and :meth:`AdaptiveLUT.regularisation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.mobilenet_v2 import _FEATURE_BLOCKS, MobileNetV2, mobilenet_v2

if TYPE_CHECKING:
    from PIL.Image import Image
    from PIL.ImageFilter import Color3DLUT, Filter

__all__ = [
    "AdaptiveLUT",
    "Lut3dTransform",
    "ThumbnailCNN",
    "adaptive_lut",
    "adaptive_lut_small",
    "apply_lut",
    "filter_in_bands",
    "fuse_luts",
    "identity_lut",
    "lut_monotonicity",
    "lut_to_pil_filter",
    "lut_tv",
    "thumbnail",
]


def identity_lut(size: int, dtype: torch.dtype | None = None, device: torch.device | None = None) -> Tensor:
    """The identity 3D LUT, (3, D, D, D) with ``lut[c, b, g, r] = (r, g, b)[c] / (D − 1)``."""
    if size < 2:
        raise ValueError(f"lut size must be >= 2 nodes per axis, got {size}")
    axis = torch.linspace(0.0, 1.0, size, dtype=dtype, device=device)
    b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([r, g, b])


def _check_lut(lut: Tensor) -> None:
    if lut.ndim not in (4, 5) or lut.shape[-4] != 3 or not lut.shape[-1] == lut.shape[-2] == lut.shape[-3]:
        raise ValueError(f"lut must have shape (3, D, D, D) or (B, 3, D, D, D), got {tuple(lut.shape)}")


def apply_lut(x: Tensor, lut: Tensor, chunks: int | None = None) -> Tensor:
    """Trilinear 3D-LUT lookup (module docstring): (B, 3, H, W) in [0, 1] → (B, 3, H, W).

    Args:
        x: RGB images; values outside [0, 1] are clamped to the LUT's border.
        lut: one LUT (3, D, D, D) for all images or one per image (B, 3, D, D, D), ``lut[c, b, g, r]``.
        chunks: batch entries each image's pixels are split into (grid_sample's CPU kernel parallelises over
            the batch only); default ``torch.get_num_threads()`` on the CPU, 1 elsewhere.

    Differentiable in ``x`` and in ``lut``.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be an RGB batch (B, 3, H, W), got {tuple(x.shape)}")
    _check_lut(lut)
    b, _, h, w = x.shape
    if lut.ndim == 5 and lut.shape[0] != b:
        raise ValueError(f"got {lut.shape[0]} LUTs for a batch of {b} images")
    k = chunks if chunks is not None else (torch.get_num_threads() if x.device.type == "cpu" else 1)
    k = max(1, min(int(k), h * w))
    n = h * w
    grid = x.permute(0, 2, 3, 1).reshape(b, n, 3) * 2.0 - 1.0  # (x, y, z) = (r, g, b) in [-1, 1]
    pad = (-n) % k
    if pad:
        grid = F.pad(grid, (0, 0, 0, pad))
    m = (n + pad) // k
    grid = grid.reshape(b * k, 1, 1, m, 3)
    luts = lut.expand(b, *lut.shape[-4:]) if lut.ndim == 4 else lut
    luts = luts.unsqueeze(1).expand(b, k, *lut.shape[-4:]).reshape(b * k, *lut.shape[-4:])
    out = F.grid_sample(luts, grid, mode="bilinear", padding_mode="border", align_corners=True)
    out = out.reshape(b, k, 3, m).permute(0, 2, 1, 3).reshape(b, 3, k * m)
    return out[..., :n].reshape(b, 3, h, w)


def fuse_luts(weights: Tensor, basis: Tensor) -> Tensor:
    """``φ = Σ_n w_n φ_n``: weights (B, N), basis (N, 3, D, D, D) → (B, 3, D, D, D)."""
    if weights.ndim != 2 or basis.ndim != 5 or weights.shape[1] != basis.shape[0]:
        raise ValueError(
            f"need weights (B, N) and basis (N, 3, D, D, D), got {tuple(weights.shape)}, {tuple(basis.shape)}"
        )
    return torch.einsum("bn,ncxyz->bcxyz", weights, basis)


def _axis_differences(lut: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``φ[.., i] − φ[.., i+1]`` along r (last axis), g and b: the paper's ``dif_r, dif_g, dif_b``."""
    return (
        lut[..., :-1] - lut[..., 1:],
        lut[..., :-1, :] - lut[..., 1:, :],
        lut[..., :-1, :, :] - lut[..., 1:, :, :],
    )


def lut_tv(lut: Tensor) -> Tensor:
    """Total variation of a 3D LUT (Zeng et al. 2020, Eq. 6, as in their ``TV_3D``): scalar.

    ``TV = Σ_{axis ∈ r,g,b} mean(ω ⊙ (φ[.., i] − φ[.., i+1])²)``, where ``ω = 2`` on the first and last
    difference along that axis and 1 elsewhere, means over all channels and nodes (and LUTs, for a leading
    batch dim). It is 0 for a constant LUT; for the identity LUT of D nodes it is ``(D + 1) / (D − 1)³``.
    """
    _check_lut(lut)
    tv = lut.new_zeros(())
    for axis, diff in zip((-1, -2, -3), _axis_differences(lut), strict=True):
        weight = torch.ones(diff.shape[axis], dtype=lut.dtype, device=lut.device)
        weight[0] = weight[-1] = 2.0
        shape = [1] * diff.ndim
        shape[axis] = -1
        tv = tv + (diff.square() * weight.view(shape)).mean()
    return tv


def lut_monotonicity(lut: Tensor) -> Tensor:
    """Monotonicity penalty (Zeng et al. 2020, Eq. 7): ``Σ_axis mean(ReLU(φ[.., i] − φ[.., i+1]))``, scalar.

    Zero iff every output channel is non-decreasing along every input axis (the identity LUT is).
    """
    _check_lut(lut)
    return sum((F.relu(diff).mean() for diff in _axis_differences(lut)), lut.new_zeros(()))


def thumbnail(x: Tensor, size: int) -> Tensor:
    """Resize to ``size × size`` (aspect not kept, as the paper): antialiased bilinear, (B, C, S, S)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def colour_histogram(x: Tensor, bins: int) -> Tensor:
    """Per-channel histograms of images in [0, 1] and their cumulative sums, each channel's summing to 1:
    (B, C, H, W) → (B, 2 · C · bins), ``[hist_c0, …, cdf_c0, …]``; values outside [0, 1] fall in the end bins.
    No gradient (a count)."""
    b, c = x.shape[:2]
    index = (x.detach().flatten(2) * bins).long().clamp_(0, bins - 1)
    counts = torch.zeros(b, c, bins, dtype=x.dtype, device=x.device)
    counts.scatter_add_(2, index, torch.ones_like(index, dtype=x.dtype))
    hist = counts / index.shape[-1]
    return torch.cat([hist.flatten(1), hist.cumsum(-1).flatten(1)], dim=1)


class HistogramBranch(nn.Module):
    """Global colour statistics → ``out_features``: :func:`colour_histogram` of the thumbnail (``bins`` per
    channel, and the cumulative histograms), then Linear → LeakyReLU(0.2) → Linear (zero-initialised, so it
    adds nothing at first). (B, 3, H, W) → (B, out_features).

    Why (ours, not the paper's): a global colour transform is chiefly a function of the image's colour
    distribution, which the CNN must otherwise infer; and the paper's CNN, whose convs start with zero biases
    and are each followed by LeakyReLU and InstanceNorm, is blind at initialisation to a global gain of the
    input (the normalisation divides it out), i.e. to exposure, the first thing a correction must see.
    """

    def __init__(self, out_features: int, bins: int = 32, hidden: int = 64) -> None:
        super().__init__()
        if bins < 2 or hidden < 1:
            raise ValueError(f"need bins >= 2 and hidden >= 1, got bins={bins}, hidden={hidden}")
        self.bins = bins
        self.mlp = nn.Sequential(
            nn.Linear(6 * bins, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out_features)
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(colour_histogram(x, self.bins))


NORMS: dict[str, type[nn.Module]] = {
    "instance": nn.InstanceNorm2d,
    "batch": nn.BatchNorm2d,
    "none": nn.Identity,
}


class MobileNetV2Trunk(nn.Module):
    """The first 13 blocks of MobileNetV2 1.0 (:mod:`models.mobilenet_v2`, ImageNet weights): RGB in [0, 1]
    (B, 3, H, W) → (B, 96, H/16, W/16), the feature map before its stride-32 stage."""

    channels = MobileNetV2.feature_channels["aux"]  # 96

    def __init__(self, weights: str | None = "imagenet") -> None:
        super().__init__()
        self.net = mobilenet_v2(num_classes=None, weights=weights)
        self.net.blocks = self.net.blocks[: _FEATURE_BLOCKS["aux"] + 1]  # up to the "aux" output: 13 blocks

    def forward(self, x: Tensor) -> Tensor:
        return self.net.forward_features(x)["aux"]


class ThumbnailCNN(nn.Module):
    """The paper's weight predictor: thumbnail → ``out_features`` numbers per image, (B, 3, H, W) → (B, F).

    ``thumbnail(x, thumb_size)``, then five 3×3 stride-2 convs (widths ``widths``), each followed by
    LeakyReLU(0.2) and, except the last, an affine InstanceNorm; dropout; a final conv whose kernel covers the
    remaining ``thumb_size / 32`` square map (8×8 for 256) to ``out_features``. Paper init: Xavier-normal
    convs, InstanceNorm weights ~ N(1, 0.02).

    Args:
        out_features: numbers predicted per image.
        thumb_size: side of the square thumbnail, a multiple of 32.
        widths: the five conv widths (the paper: 16, 32, 64, 128, 128).
        dropout: dropout before the last conv (the paper: 0.5).
        norm: the normalisation after the first four convs: ``"instance"`` (the paper's), ``"batch"`` or
            ``"none"``.
        histogram_bins: > 0 adds a :class:`HistogramBranch` of the thumbnail with that many bins per
            channel to the output (ours); 0: the paper's CNN alone.
        encoder: ``"cnn"`` (the paper's five convs above) or ``"mobilenet_v2"`` (ours): the first 13 blocks
            of an ImageNet MobileNetV2 1.0 (to its 96-channel stage at stride 16, 534 K parameters; genuine
            weights from ``../shared/weights``, one warning and random weights where the file is missing),
            global average pooling, dropout and a 1×1 conv head. Semantics (a face, a sky, snow) is what
            tells a dark scene from an under-exposed one; ``widths`` and ``norm`` then do not apply.
        encoder_weights: the MobileNetV2 weights (``"imagenet"``, a TFLite path, or ``None``: random).
    """

    def __init__(
        self,
        out_features: int,
        thumb_size: int = 256,
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        dropout: float = 0.5,
        norm: str = "instance",
        histogram_bins: int = 0,
        encoder: str = "cnn",
        encoder_weights: str | None = "imagenet",
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        if out_features < 1:
            raise ValueError(f"out_features must be >= 1, got {out_features}")
        if thumb_size < 32 or thumb_size % 32:
            raise ValueError(f"thumb_size must be a positive multiple of 32, got {thumb_size}")
        if len(widths) != 5 or any(w < 1 for w in widths):
            raise ValueError(f"widths must be five positive conv widths, got {widths}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if encoder not in ("cnn", "mobilenet_v2"):
            raise ValueError(f"encoder must be 'cnn' or 'mobilenet_v2', got {encoder!r}")
        self.thumb_size = thumb_size
        if encoder == "mobilenet_v2":
            self.body = nn.Sequential(
                MobileNetV2Trunk(encoder_weights),
                nn.AdaptiveAvgPool2d(1),
                nn.Dropout(dropout),
                nn.Conv2d(MobileNetV2Trunk.channels, out_features, 1),
            )
            nn.init.xavier_normal_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        else:
            layers: list[nn.Module] = []
            for i, (c_in, c_out) in enumerate(zip((3, *widths[:-1]), widths, strict=True)):
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
                if i < len(widths) - 1 and norm != "none":
                    layers.append(NORMS[norm](c_out, affine=True))
            layers += [nn.Dropout(dropout), nn.Conv2d(widths[-1], out_features, thumb_size // 32)]
            self.body = nn.Sequential(*layers)
            for m in self.body.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.xavier_normal_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.zeros_(m.bias)
        self.histogram = HistogramBranch(out_features, histogram_bins) if histogram_bins > 0 else None

    @property
    def head(self) -> nn.Conv2d:
        """The last conv (its bias sets the initial prediction)."""
        return self.body[-1]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an RGB batch (B, 3, H, W), got {tuple(x.shape)}")
        thumb = thumbnail(x, self.thumb_size)
        out = self.body(thumb).flatten(1)
        return out if self.histogram is None else out + self.histogram(thumb)


class AdaptiveLUT(nn.Module):
    """Image-adaptive 3D LUT: ``y = apply_lut(x, Σ_n w_n(x) φ_n)``, (B, 3, H, W) → (B, 3, H, W).

    Args:
        n_luts: number of basis LUTs N (the paper: 3).
        lut_size: nodes per axis D (the paper: 33).
        thumb_size, widths, dropout, norm, histogram_bins, encoder, encoder_weights: the weight predictor,
            :class:`ThumbnailCNN`.
        smooth_from_init: measure smoothness on ``φ_n − φ_n(init)`` (so ``φ_1``, initialised to the identity,
            pays nothing for being the identity; the zero-initialised others are unchanged); ``False`` is the
            paper's ``TV(φ_n)``, which also penalises the identity's slope by ``(D + 1) / (D − 1)³``.
        head_init: ``"identity"`` (the model starts as the identity, below) or ``"paper"`` (Xavier-normal head
            weights and biases 1: ``w_1`` starts at about 1 ± 0.8 per image, a random brightness change,
            noisier still under dropout).

    Init: ``φ_1`` = identity, the others 0 (the paper's). ``head_init="identity"``: the head predicting
    ``w_1`` starts at weights 0 and bias 1, so ``w_1 = 1`` and the output is the input; the heads of
    ``w_2 … w_N`` start at bias 0 and weights ~ N(0, 1e-4), so each ``w_n`` is a small, different function of
    the image.
    That breaks the symmetry of the zero-initialised LUTs: with equal heads (all weights 0, all biases 1,
    as we first had it) ``φ_2 … φ_N`` and their heads receive identical gradients at every step and stay
    equal forever (measured: ``w_2 = w_3`` to all digits after 216 steps), so N LUTs act as 2. Teaching the
    model to undo a fixed −1 EV shift on 24 T91 photos (96 px, batch 8, Adam 1e-3, 300 steps) took the
    held-out PSNR from 17.9 to 28.3 dB with an identity start and only to 22.1 dB, erratically, with the
    paper's head. The output is not clamped (clamping would stop the gradient of pixels pushed past 0 or 1):
    clamp where a photo is written or measured.
    """

    def __init__(
        self,
        n_luts: int = 3,
        lut_size: int = 33,
        thumb_size: int = 256,
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        dropout: float = 0.5,
        smooth_from_init: bool = True,
        head_init: str = "identity",
        norm: str = "instance",
        histogram_bins: int = 0,
        encoder: str = "cnn",
        encoder_weights: str | None = "imagenet",
    ) -> None:
        super().__init__()
        if n_luts < 1:
            raise ValueError(f"n_luts must be >= 1, got {n_luts}")
        if head_init not in ("identity", "paper"):
            raise ValueError(f"head_init must be 'identity' or 'paper', got {head_init!r}")
        self.n_luts = n_luts
        self.lut_size = lut_size
        self.smooth_from_init = smooth_from_init
        self.thumb_size = thumb_size  # the side of the thumbnail the weights are predicted from
        self.backbone = ThumbnailCNN(
            n_luts, thumb_size, widths, dropout, norm, histogram_bins, encoder, encoder_weights
        )
        head = self.backbone.head
        nn.init.constant_(head.bias, 1.0)
        if head_init == "identity":
            with torch.no_grad():
                head.bias[1:] = 0.0
                head.weight[0] = 0.0
                head.weight[1:].normal_(0.0, 1e-4)
        init = torch.zeros(n_luts, 3, lut_size, lut_size, lut_size)
        init[0] = identity_lut(lut_size)
        self.basis = nn.Parameter(init.clone())
        self.register_buffer("basis_init", init, persistent=False)

    def predict_weights(self, x: Tensor) -> Tensor:
        """LUT weights per image, (B, 3, H, W) → (B, N)."""
        return self.backbone(x)

    def fused_lut(self, weights: Tensor) -> Tensor:
        """The image's LUT ``Σ_n w_n φ_n``, (B, N) → (B, 3, D, D, D)."""
        return fuse_luts(weights, self.basis)

    def forward_with_weights(self, x: Tensor, at: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The corrected images and the predicted weights (for :meth:`regularisation`); ``at`` (B, 3, h, w):
        colours to apply each image's LUT to instead of ``x`` itself (e.g. a sample of its pixels)."""
        weights = self.predict_weights(x)
        return apply_lut(x if at is None else at, self.fused_lut(weights)), weights

    def forward(self, x: Tensor, at: Tensor | None = None) -> Tensor:
        """``x`` (or ``at``, see :meth:`forward_with_weights`) corrected by the LUT predicted from ``x``."""
        return self.forward_with_weights(x, at)[0]

    def global_transforms(self, x: Tensor) -> list[Lut3dTransform]:
        """Each image's fused LUT, predicted from its thumbnail, to apply at any resolution: (B, 3, H, W)
        (any size: it is thumbnailed first) → B transforms."""
        return [Lut3dTransform(lut) for lut in self.fused_lut(self.predict_weights(x))]

    def regularisation(
        self, weights: Tensor, lambda_smooth: float = 1e-4, lambda_monotonicity: float = 10.0
    ) -> dict[str, Tensor]:
        """The paper's regularisers, each a scalar: ``tv = Σ_n TV(φ_n)``, ``monotonicity = Σ_n R_m(φ_n)``,
        ``weight_l2 = mean(w²)`` and ``total = λ_s (tv + weight_l2) + λ_m monotonicity`` (to add to the loss;
        defaults: the paper's ``λ_s = 1e-4``, ``λ_m = 10``)."""
        smooth_target = self.basis - self.basis_init if self.smooth_from_init else self.basis
        tv = sum((lut_tv(lut) for lut in smooth_target), self.basis.new_zeros(()))
        mono = sum((lut_monotonicity(lut) for lut in self.basis), self.basis.new_zeros(()))
        weight_l2 = weights.square().mean()
        total = lambda_smooth * (tv + weight_l2) + lambda_monotonicity * mono
        return {"tv": tv, "monotonicity": mono, "weight_l2": weight_l2, "total": total}


def lut_to_pil_filter(lut: Tensor) -> Color3DLUT:
    """A Pillow ``ImageFilter.Color3DLUT`` of one LUT (3, D, D, D), for 8-bit photos: ``image.filter(f)``.

    Pillow's table runs red fastest, then green, then blue, i.e. ``lut[c, b, g, r]`` channels-last. Pillow
    interpolates trilinearly in 16-bit fixed point (node values as int16 in units of 1 / (255 · 64), so
    about [−2, 2] is representable) and clips and rounds the result to 8 bit: within one grey level of
    :func:`apply_lut` followed by clamping to [0, 1] and rounding. Node values are clamped to [−2, 2] first
    (not to [0, 1], which would change the colours interpolated next to a node beyond the range).
    """
    from PIL import ImageFilter

    _check_lut(lut)
    if lut.ndim == 5:
        if lut.shape[0] != 1:
            raise ValueError(f"lut_to_pil_filter takes one LUT, got a batch of {lut.shape[0]}")
        lut = lut[0]
    size = lut.shape[-1]
    table = lut.detach().clamp(-2.0, 2.0).permute(1, 2, 3, 0).reshape(-1).cpu().double().numpy()
    return ImageFilter.Color3DLUT(size, table)


def filter_in_bands(image: Image, image_filter: Filter, threads: int = 2) -> Image:
    """``image.filter(image_filter)`` for a point-wise filter, on ``threads`` horizontal bands at once.

    Pillow's colour-LUT loop releases the GIL (``ImagingSectionEnter`` in ``libImaging/ColorLUT.c``), so
    bands filtered in threads run on separate cores; cropping and pasting the bands copies the image twice.
    Exact: a point-wise filter gives the same pixels band by band."""
    from PIL import Image as PILImage

    width, height = image.size
    threads = max(1, min(int(threads), height))
    if threads == 1:
        return image.filter(image_filter)
    boxes = [(0, i * height // threads, width, (i + 1) * height // threads) for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        bands = list(pool.map(lambda box: image.crop(box).filter(image_filter), boxes))
    out = PILImage.new(image.mode, image.size)
    for box, band in zip(boxes, bands, strict=True):
        out.paste(band, box[:2])
    return out


@dataclass(frozen=True)
class Lut3dTransform:
    """One image's global colour transform, a 3D LUT (3, D, D, D): :meth:`apply` on float tensors (training,
    test), :meth:`apply_pil` on an 8-bit RGB photo (Pillow's ``Color3DLUT``, C, within one grey level of
    :meth:`apply` followed by rounding; the path ``stage=predict`` takes at full resolution)."""

    lut: Tensor

    def apply(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) → (B, 3, H, W), not clamped."""
        return apply_lut(x, self.lut)

    def apply_pil(self, image: Image, threads: int = 2) -> Image:
        """An RGB PIL image → the corrected RGB PIL image (8 bit), on ``threads`` cores."""
        return filter_in_bands(image, lut_to_pil_filter(self.lut), threads)


def adaptive_lut() -> AdaptiveLUT:
    """The paper's model: 3 basis LUTs of 33³ nodes, 256 px thumbnail, widths 16-32-64-128-128.

    593.5 K parameters: 270 K in the CNN, 323 K LUT entries."""
    return AdaptiveLUT(n_luts=3, lut_size=33)


def adaptive_lut_small() -> AdaptiveLUT:
    """A lighter variant: 3 basis LUTs of 17³ nodes (the predictor unchanged; 314 K params)."""
    return AdaptiveLUT(n_luts=3, lut_size=17)
