"""Super-resolution degradations and colour transforms on (B, C, H, W) tensors in [0, 1].

The low-resolution (LR) input is made from the high-resolution (HR) image with the same kernel at train and
test time (:func:`make_lr`): antialiased bicubic downscaling, 8-bit quantisation, optionally JPEG.

Bicubic kernels (Keys 1981, cubic convolution with parameter ``a``):

* Matlab ``imresize`` (used to make the published Set5/Set14 LR images) uses ``a = -0.5`` and, when
  downscaling by ``s``, stretches the kernel by ``s`` (antialiasing); it pads borders symmetrically.
* ``F.interpolate(mode="bicubic", antialias=True)`` is PIL's resampler: ``a = -0.5``, kernel stretched when
  downscaling, weights renormalised at the borders instead of mirror padding. Same kernel as Matlab; only a
  few border pixels differ (and those are cropped by the metrics' ``crop_border``). Bicubic ×2/×3/×4 on Set5
  gives 33.68 / 30.41 / 28.43 dB Y-PSNR with it, against the published 33.66 / 30.39 / 28.42.
* ``F.interpolate(mode="bicubic", antialias=False)`` uses ``a = -0.75`` (OpenCV's) and no stretching: it
  aliases when downscaling and gives ~0.2-0.3 dB higher bicubic upscaling baselines than the literature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.io import decode_jpeg, encode_jpeg

__all__ = [
    "SRDegradation",
    "bicubic_downscale",
    "bicubic_upscale",
    "jpeg_compress",
    "make_lr",
    "mod_crop",
    "quantize_8bit",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]


def _check_scale(scale: int) -> None:
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")


def _as_batch(img: Tensor) -> tuple[Tensor, bool]:
    """(C, H, W) → (1, C, H, W); returns whether a batch dimension was added."""
    if img.ndim == 3:
        return img.unsqueeze(0), True
    if img.ndim == 4:
        return img, False
    raise ValueError(f"expected an image (C, H, W) or a batch (B, C, H, W), got shape {tuple(img.shape)}")


def quantize_8bit(x: Tensor) -> Tensor:
    """Round to the 8-bit grid: ``round(clamp(x, 0, 1) · 255) / 255`` (what saving a PNG does)."""
    return x.clamp(0.0, 1.0).mul(255.0).round().div(255.0)


def mod_crop(img: Tensor, scale: int) -> Tensor:
    """Crop the bottom/right of ``img`` (..., H, W) so that H and W are multiples of ``scale``."""
    _check_scale(scale)
    h, w = img.shape[-2:]
    return img[..., : h - h % scale, : w - w % scale]


def bicubic_downscale(hr: Tensor, scale: int) -> Tensor:
    """Antialiased bicubic downscaling by an integer factor, clamped to [0, 1].

    ``hr`` (B, C, H, W) or (C, H, W) with H, W multiples of ``scale`` (use :func:`mod_crop`) →
    (…, H/scale, W/scale). Keys cubic kernel ``a = -0.5`` stretched by ``scale`` — the kernel of Matlab's
    ``imresize`` (see the module docstring for the border difference). Use the same function for training
    and test LR images so the network never sees a kernel mismatch.
    """
    _check_scale(scale)
    x, added = _as_batch(hr)
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"image size {h}x{w} is not a multiple of scale {scale}: call mod_crop(hr, {scale}) first"
        )
    if scale == 1:
        out = x.clamp(0.0, 1.0)
    else:
        out = F.interpolate(
            x, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False
        ).clamp(0.0, 1.0)
    return out.squeeze(0) if added else out


def bicubic_upscale(lr: Tensor, scale: int, antialias: bool = True) -> Tensor:
    """Bicubic upscaling by an integer factor, clamped to [0, 1]: (…, h, w) → (…, scale·h, scale·w).

    ``antialias=True`` selects torch's PIL-style kernel (Keys ``a = -0.5``, Matlab ``imresize``'s, which
    reproduces the published bicubic baselines); ``False`` selects torch's default ``a = -0.75``.
    """
    _check_scale(scale)
    x, added = _as_batch(lr)
    h, w = x.shape[-2:]
    out = F.interpolate(
        x, size=(h * scale, w * scale), mode="bicubic", antialias=antialias, align_corners=False
    ).clamp(0.0, 1.0)
    return out.squeeze(0) if added else out


def jpeg_compress(img: Tensor, quality: int) -> Tensor:
    """JPEG round trip (libjpeg via torchvision, 8-bit, deterministic) of (C, H, W) or (B, C, H, W).

    C must be 1 or 3; values are clamped to [0, 1] and quantised to 8 bits first. Not differentiable.
    Returns a tensor with the input's shape, dtype and device.
    """
    if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be an int in 1..100, got {quality!r}")
    x, added = _as_batch(img)
    if not x.is_floating_point():
        raise ValueError(f"expected a float image in [0, 1], got dtype {x.dtype}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"JPEG needs 1 (gray) or 3 (RGB) channels, got {x.shape[1]}")
    data = x.detach().clamp(0.0, 1.0).mul(255.0).round().to(device="cpu", dtype=torch.uint8)
    decoded = [decode_jpeg(encode_jpeg(image.contiguous(), quality=quality)) for image in data]
    out = torch.stack(decoded).to(device=img.device, dtype=img.dtype).div_(255.0)
    return out.squeeze(0) if added else out


def make_lr(hr: Tensor, scale: int, jpeg_quality: int | None = None, quantize: bool = True) -> Tensor:
    """The SR degradation: ``LR = JPEG_q(Q8(bicubic↓_scale(HR)))``, (…, H, W) → (…, H/scale, W/scale).

    ``Q8`` is 8-bit rounding (as when LR images are stored as PNG; skipped with ``quantize=False``),
    ``JPEG_q`` is applied only when ``jpeg_quality`` is given. ``hr`` must be mod-cropped (:func:`mod_crop`).
    """
    lr = bicubic_downscale(hr, scale)
    if quantize:
        lr = quantize_8bit(lr)
    if jpeg_quality is not None:
        lr = jpeg_compress(lr, jpeg_quality)
    return lr


class SRDegradation(nn.Module):
    """Module form of :func:`make_lr` (no parameters): HR (…, H, W) → LR (…, H/scale, W/scale)."""

    def __init__(self, scale: int, jpeg_quality: int | None = None, quantize: bool = True) -> None:
        super().__init__()
        _check_scale(scale)
        if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be None or an int in 1..100, got {jpeg_quality!r}")
        self.scale = scale
        self.jpeg_quality = jpeg_quality
        self.quantize = quantize

    def forward(self, hr: Tensor) -> Tensor:
        return make_lr(hr, self.scale, self.jpeg_quality, self.quantize)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, jpeg_quality={self.jpeg_quality}, quantize={self.quantize}"


# --- colour: ITU-R BT.601 "studio swing" YCbCr, as Matlab's rgb2ycbcr / BasicSR's rgb2ycbcr ---------------

# Rows: Y, Cb, Cr; columns: R, G, B; for RGB in [0, 1] the output is in [0, 1] after dividing by 255.
_YCBCR_MATRIX = torch.tensor(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=torch.float64,
)
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)
_YCBCR_INVERSE = torch.linalg.inv(_YCBCR_MATRIX)


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """RGB (B, 3, H, W) in [0, 1] → YCbCr (B, 3, H, W) in [0, 1] (BT.601 studio swing, Matlab ``rgb2ycbcr``).

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255`` ∈ [16/255, 235/255]; Cb, Cr ∈ [16/255, 240/255].
    """
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"expected RGB (..., 3, H, W), got shape {tuple(rgb.shape)}")
    matrix = _YCBCR_MATRIX.to(device=rgb.device, dtype=rgb.dtype) / 255.0
    offset = _YCBCR_OFFSET.to(device=rgb.device, dtype=rgb.dtype) / 255.0
    return torch.einsum("ij,...jhw->...ihw", matrix, rgb) + offset[:, None, None]


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    """Exact inverse of :func:`rgb_to_ycbcr`: YCbCr (B, 3, H, W) in [0, 1] → RGB (not clamped)."""
    if ycbcr.ndim < 3 or ycbcr.shape[-3] != 3:
        raise ValueError(f"expected YCbCr (..., 3, H, W), got shape {tuple(ycbcr.shape)}")
    inverse = (_YCBCR_INVERSE * 255.0).to(device=ycbcr.device, dtype=ycbcr.dtype)
    offset = _YCBCR_OFFSET.to(device=ycbcr.device, dtype=ycbcr.dtype) / 255.0
    return torch.einsum("ij,...jhw->...ihw", inverse, ycbcr - offset[:, None, None])
