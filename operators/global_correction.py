"""One-tap correction of a full-resolution photo by a global model: the transform is predicted from a
thumbnail and applied to every pixel of the 8-bit photo, nothing else touches the full resolution.

A global model (``models.adaptive_lut.AdaptiveLUT``, ``models.curves.CurveNet``) has ``thumb_size`` and
``global_transforms(x)``, which gives each image's transform (a fused 3D LUT; sampled curves and a colour
matrix) with ``apply_pil(image)``: Pillow's C loops on the 8-bit photo (``Color3DLUT``, ``point``,
``convert``), which measured 4× to 5× faster than the float path in torch on a 12-Mpx photo and need no
float copy of it (``models/adaptive_lut.py`` has the figures).

The thumbnail is the one training and the test step use, ``models.adaptive_lut.thumbnail`` (torch's
antialiased bilinear resize to ``thumb_size²``, aspect not kept) of the float photo, so below
``3 × thumb_size`` on the short side (the test images) both paths see the same thumbnail. A larger photo is
first box-reduced by an integer factor in 8 bit (``Image.reduce``, C) to keep the float copy small; that
pre-filter is the only difference. Measured on a 12-Mpx photo (CPU time, loaded 2-core machine): 58 ms,
against 95 ms for torch's resize of a float copy of the whole photo (plus the copy).

Colour: pixels are taken as sRGB; an embedded ICC profile is not applied (the loader says so), and the output
carries none.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from models.adaptive_lut import thumbnail

__all__ = ["correct_photo", "from_pil", "is_global", "pil_thumbnail", "to_pil"]


def is_global(net: nn.Module) -> bool:
    """Whether ``net`` predicts a global transform (``global_transforms`` and ``thumb_size``)."""
    return hasattr(net, "global_transforms") and hasattr(net, "thumb_size")


def to_pil(x: Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1] → an 8-bit RGB PIL image (clamped, rounded)."""
    array = x.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).permute(1, 2, 0)
    return Image.fromarray(array.cpu().numpy(), "RGB")


def from_pil(image: Image.Image) -> Tensor:
    """An RGB PIL image → (3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).float().div(255.0)


REDUCING_GAP = 3  # box-reduce a photo whose short side is over this many thumbnails first


def pil_thumbnail(image: Image.Image, size: int) -> Tensor:
    """The ``size × size`` thumbnail of a photo (module docstring), (1, 3, size, size) float in [0, 1]."""
    factor = min(image.size) // (REDUCING_GAP * size)
    if factor > 1:
        image = image.reduce(factor)
    return thumbnail(from_pil(image).unsqueeze(0), size)


@torch.no_grad()
def correct_photo(net: nn.Module, image: Image.Image, threads: int = 2) -> Image.Image:
    """The photo corrected by a global ``net`` (in eval mode): transform from the thumbnail, applied to the
    8-bit photo on ``threads`` cores. RGB PIL image → RGB PIL image of the same size."""
    if not is_global(net):
        raise ValueError(f"{type(net).__name__} is not a global model (no global_transforms / thumb_size)")
    thumb = pil_thumbnail(image, int(net.thumb_size))
    param = next(net.parameters(), None)
    if param is not None:
        thumb = thumb.to(param.device, param.dtype)
    return net.global_transforms(thumb)[0].apply_pil(image.convert("RGB"), threads)
