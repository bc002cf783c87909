"""Global per-channel curves, Zero-DCE style (Guo, Li, Guo, Loy, Kwong, Hou, Cong, "Zero-Reference Deep Curve
Estimation for Low-Light Image Enhancement", CVPR 2020), predicted from a thumbnail.

The light-enhancement curve (the paper's Eq. 1-2), iterated ``n`` times per channel ``c``:
``LE_0 = x``, ``LE_k = LE_{k-1} + α_{k,c} · LE_{k-1} · (1 − LE_{k-1})``, ``α ∈ [−1, 1]`` (a tanh), which maps
[0, 1] monotonically onto itself for every α. Zero-DCE predicts a map of α per pixel; here one α per image,
iteration and channel (``n × 3`` numbers, the paper's n = 8) from the
:class:`~models.adaptive_lut.ThumbnailCNN` of the 3D-LUT model, since the design is global. Optionally a
3 × 3 colour matrix ``M = I + ΔM`` (predicted, applied after the curves) mixes channels, which per-channel
curves cannot: saturation, for one, is the linear map ``s·I + (1 − s)·1·wᵀ`` of the encoded RGB.

Evaluation at full resolution: the curve is global per channel, so it is sampled once on ``lut_size`` points
of [0, 1] and applied by linear interpolation (``grid_sample`` on a 1-pixel-high image). Measured on a
4000×3000 photo, 2 threads on a shared 2-core machine, n = 8: the exact iteration 2.5 CPU-s (1.6 in place),
an interpolating gather 0.87 CPU-s, the ``grid_sample`` lookup 0.51 CPU-s; with 4096 points it differs from
the exact curve by < 1e-6 (256 points: 4e-5). ``lut_size=None`` evaluates the exact iteration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.adaptive_lut import ThumbnailCNN

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "CurveNet",
    "CurvesTransform",
    "apply_curves",
    "apply_lut1d",
    "curve_lut1d",
    "curves",
    "curves_color_matrix",
]


def _check_alphas(alphas: Tensor) -> None:
    if alphas.ndim != 3 or alphas.shape[2] != 3:
        raise ValueError(f"alphas must have shape (B, n_iterations, 3), got {tuple(alphas.shape)}")


def apply_curves(x: Tensor, alphas: Tensor) -> Tensor:
    """Iterated curves ``LE_k = LE_{k-1} + α_k LE_{k-1} (1 − LE_{k-1})``.

    x (B, 3, H, W), alphas (B, n, 3) → (B, 3, H, W)."""
    _check_alphas(alphas)
    if x.ndim != 4 or x.shape[1] != 3 or alphas.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"need x (B, 3, H, W) and alphas (B, n, 3), got {tuple(x.shape)}, {tuple(alphas.shape)}"
        )
    for k in range(alphas.shape[1]):
        a = alphas[:, k].reshape(-1, 3, 1, 1)
        x = x + a * x * (1 - x)
    return x


def curve_lut1d(alphas: Tensor, size: int = 4096) -> Tensor:
    """The curves sampled at ``size`` equally spaced points of [0, 1]: (B, n, 3) → (B, 3, size)."""
    _check_alphas(alphas)
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    t = torch.linspace(0.0, 1.0, size, dtype=alphas.dtype, device=alphas.device)
    return apply_curves(t.view(1, 1, 1, size).expand(alphas.shape[0], 3, 1, size), alphas).squeeze(2)


def apply_lut1d(x: Tensor, lut: Tensor, chunks: int | None = None) -> Tensor:
    """Per-channel 1-D LUT with linear interpolation, nodes at ``i / (K − 1)``: (B, C, H, W), (B, C, K) → x's.

    Inputs outside [0, 1] are clamped to it. Differentiable in ``x`` and ``lut``. ``chunks``: batch entries
    each channel's pixels are split into, as in :func:`~models.adaptive_lut.apply_lut` (grid_sample's CPU
    kernel parallelises over the batch only); default ``torch.get_num_threads()`` on the CPU, 1 elsewhere.
    """
    if x.ndim != 4 or lut.ndim != 3 or lut.shape[:2] != x.shape[:2]:
        raise ValueError(f"need x (B, C, H, W) and lut (B, C, K), got {tuple(x.shape)}, {tuple(lut.shape)}")
    b, c, h, w = x.shape
    n = h * w
    k = chunks if chunks is not None else (torch.get_num_threads() if x.device.type == "cpu" else 1)
    k = max(1, min(int(k), n))
    gx = x.reshape(b * c, n) * 2.0 - 1.0
    pad = (-n) % k
    if pad:
        gx = F.pad(gx, (0, pad))
    m = (n + pad) // k
    gx = gx.reshape(b * c * k, 1, m, 1)
    grid = torch.cat([gx, torch.zeros_like(gx)], dim=-1)  # (x, y) = (value, 0) on a 1-pixel-high image
    size = lut.shape[-1]
    image = lut.reshape(b * c, 1, 1, 1, size).expand(b * c, k, 1, 1, size).reshape(b * c * k, 1, 1, size)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(b * c, k * m)[:, :n].reshape(b, c, h, w)


@dataclass(frozen=True)
class CurvesTransform:
    """One image's curves sampled at ``K`` points of [0, 1], ``table`` (3, K), then an optional colour matrix
    (3, 3): :meth:`apply` on float tensors, :meth:`apply_pil` on an 8-bit RGB photo.

    For 8-bit photos ``K = 256`` samples the curve exactly at the 256 input levels, so Pillow's
    ``Image.point`` (a table lookup, C) is exact up to rounding; the colour matrix is
    ``Image.convert("RGB", matrix)`` (C, float, rounded and clipped), applied to the rounded curve output:
    within about one grey level of :meth:`apply` followed by rounding.
    """

    table: Tensor
    matrix: Tensor | None = None

    def apply(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) → (B, 3, H, W), linear interpolation between the table's points; not clamped."""
        y = apply_lut1d(x, self.table.expand(x.shape[0], *self.table.shape))
        if self.matrix is not None:
            y = torch.einsum("ij,bjhw->bihw", self.matrix, y)
        return y

    def apply_pil(self, image: Image, threads: int = 2) -> Image:
        """An RGB PIL image → the corrected RGB PIL image (8 bit); ``threads`` is unused (Pillow's point and
        convert take well under the LUT model's time)."""
        if self.table.shape[-1] != 256:
            raise ValueError(f"apply_pil needs 256 points per curve, got {tuple(self.table.shape)}")
        levels = self.table.detach().clamp(0.0, 1.0).mul(255.0).round().to(torch.int64).flatten().tolist()
        out = image.point(levels)  # red's 256 entries, then green's, then blue's
        if self.matrix is not None:
            m = self.matrix.detach().double().cpu().tolist()
            out = out.convert("RGB", (*m[0], 0.0, *m[1], 0.0, *m[2], 0.0))
        return out


class CurveNet(nn.Module):
    """Global iterated curves (optionally a colour matrix) predicted from a thumbnail: (B, 3, H, W) → same.

    Args:
        n_iterations: curve iterations n (Zero-DCE: 8).
        color_matrix: also predict ``M = I + ΔM`` (9 more numbers), applied after the curves.
        thumb_size, widths, dropout, norm, histogram_bins: the predictor,
            :class:`~models.adaptive_lut.ThumbnailCNN`.
        lut_size: points of the sampled curve used at full resolution (module docstring); ``None`` evaluates
            the exact iteration at every pixel.

    The head starts at zero, so the model starts as the identity (α = 0, ``M = I``). The curves keep [0, 1];
    the colour matrix can leave it: clamp where a photo is written or measured.
    """

    def __init__(
        self,
        n_iterations: int = 8,
        color_matrix: bool = False,
        thumb_size: int = 256,
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        dropout: float = 0.5,
        lut_size: int | None = 4096,
        norm: str = "instance",
        histogram_bins: int = 0,
    ) -> None:
        super().__init__()
        if n_iterations < 1:
            raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
        if lut_size is not None and lut_size < 2:
            raise ValueError(f"lut_size must be >= 2 or None, got {lut_size}")
        self.n_iterations = n_iterations
        self.color_matrix = color_matrix
        self.lut_size = lut_size
        self.thumb_size = thumb_size  # the side of the thumbnail the weights are predicted from
        self.backbone = ThumbnailCNN(
            3 * n_iterations + (9 if color_matrix else 0), thumb_size, widths, dropout, norm, histogram_bins
        )
        nn.init.zeros_(self.backbone.head.weight)
        nn.init.zeros_(self.backbone.head.bias)

    def predict(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """α (B, n, 3) in [−1, 1] and the colour matrix (B, 3, 3) (``None`` without one)."""
        out = self.backbone(x)
        n3 = 3 * self.n_iterations
        alphas = torch.tanh(out[:, :n3]).reshape(-1, self.n_iterations, 3)
        if not self.color_matrix:
            return alphas, None
        eye = torch.eye(3, dtype=out.dtype, device=out.device)
        return alphas, eye + out[:, n3:].reshape(-1, 3, 3)

    def global_transforms(self, x: Tensor) -> list[CurvesTransform]:
        """Each image's curves (sampled at the 256 levels of an 8-bit photo) and colour matrix, predicted
        from its thumbnail: (B, 3, H, W) (any size) → B transforms."""
        alphas, matrix = self.predict(x)
        tables = curve_lut1d(alphas, 256)
        return [
            CurvesTransform(table, None if matrix is None else matrix[i]) for i, table in enumerate(tables)
        ]

    def forward(self, x: Tensor, at: Tensor | None = None) -> Tensor:
        """``x`` corrected by the curves predicted from it; ``at`` (B, 3, h, w): colours to apply each
        image's curves to instead of ``x`` itself (e.g. a sample of its pixels)."""
        alphas, matrix = self.predict(x)
        at = x if at is None else at
        if self.lut_size is None:
            y = apply_curves(at, alphas)
        else:
            y = apply_lut1d(at, curve_lut1d(alphas, self.lut_size))
        if matrix is not None:
            y = torch.einsum("bij,bjhw->bihw", matrix, y)
        return y


def curves() -> CurveNet:
    """Zero-DCE's 8 curve iterations, one α per image and channel, from the 3D-LUT paper's predictor."""
    return CurveNet(n_iterations=8)


def curves_color_matrix() -> CurveNet:
    """:func:`curves` followed by a predicted 3 × 3 colour matrix (can undo saturation and casts)."""
    return CurveNet(n_iterations=8, color_matrix=True)
