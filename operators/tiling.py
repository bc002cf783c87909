"""Tiled inference for super-resolution: upscale an image of any size with memory bounded by one tile.

The low-resolution image is cut into a grid of ``tile × tile`` cores (the last row / column smaller); each
core is processed together with ``overlap`` pixels of real context on every side (less at the image border,
where the window simply stops, as whole-image processing does), and only the core's part of the output is
kept. A network whose output pixel depends on inputs at most ``R`` LR pixels away (its receptive-field
radius, :func:`receptive_radius`) sees, for every kept pixel, exactly the values it sees on the whole image
when ``overlap ≥ R``, so the tiled output equals the whole-image output (up to float rounding): the zero
"same" padding at a window's inner edge only corrupts the ``R`` pixels next to it, which are cropped.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["receptive_radius", "tile_windows", "tiled_apply"]


def tile_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Along one axis of length ``size``: ``(core_start, core_stop, window_start, window_stop)`` per tile,
    cores ``tile`` long (the last one shorter) and windows extended by ``overlap`` on each side, clipped."""
    return [
        (start, min(start + tile, size), max(start - overlap, 0), min(start + tile + overlap, size))
        for start in range(0, size, tile)
    ]


@torch.no_grad()
def tiled_apply(fn: Callable[[Tensor], Tensor], image: Tensor, tile: int, overlap: int, scale: int) -> Tensor:
    """``fn`` (an SR net: (B, C, h, w) → (B, C', s·h, s·w)) applied tile by tile to ``image`` (B, C, H, W).

    Args:
        fn: the network (or any callable) to apply; called once per tile, on at most
            ``(tile + 2·overlap)²`` input pixels.
        image: the LR image (B, C, H, W); any H, W (not necessarily multiples of ``tile``).
        tile: side of a tile's core in LR pixels (≥ 1).
        overlap: LR pixels of context added on each side of a core (≥ 0); the output equals ``fn(image)``
            when ``overlap`` ≥ the receptive-field radius of ``fn``.
        scale: the upscaling factor s of ``fn``.

    Returns:
        (B, C', s·H, s·W), the tiles' cores written into one preallocated output (no blending needed: the
        overlaps are cropped). Peak memory is the output plus one tile's activations. Runs without gradient.
    """
    if image.ndim != 4:
        raise ValueError(f"tiled_apply expects an image (B, C, H, W), got shape {tuple(image.shape)}")
    if tile < 1 or overlap < 0 or scale < 1:
        raise ValueError(f"need tile >= 1, overlap >= 0, scale >= 1; got {tile}, {overlap}, {scale}")
    height, width = image.shape[-2:]
    out: Tensor | None = None
    for top, bottom, win_top, win_bottom in tile_windows(height, tile, overlap):
        for left, right, win_left, win_right in tile_windows(width, tile, overlap):
            window = image[..., win_top:win_bottom, win_left:win_right]
            result = fn(window)
            expected = (scale * (win_bottom - win_top), scale * (win_right - win_left))
            if result.ndim != 4 or tuple(result.shape[-2:]) != expected:
                raise ValueError(
                    f"fn returned shape {tuple(result.shape)} for a tile of {tuple(window.shape)}: expected "
                    f"(B, C, {expected[0]}, {expected[1]}) at scale {scale}"
                )
            if out is None:
                out = result.new_empty((*result.shape[:2], scale * height, scale * width))
            y0, x0 = scale * (top - win_top), scale * (left - win_left)
            out[..., scale * top : scale * bottom, scale * left : scale * right] = result[
                ..., y0 : y0 + scale * (bottom - top), x0 : x0 + scale * (right - left)
            ]
    assert out is not None  # H, W ≥ 1: at least one tile
    return out


def receptive_radius(module: nn.Module) -> int:
    """An upper bound of the receptive-field radius (in input pixels) of a feed-forward conv net: the sum of
    ``dilation · (kernel − 1) // 2`` over its ``Conv2d`` layers (exact for a chain of stride-1 convs such as
    ESPCN: 5-5-5 → 6, the paper's 5-3-3 → 4). Non-conv context (e.g. bicubic upscaling, ±2 px) is not
    counted: add it."""
    radius = 0
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            if any(s != 1 for s in layer.stride):
                raise ValueError(f"receptive_radius assumes stride-1 convolutions, got {layer}")
            kernel, dilation = layer.kernel_size, layer.dilation
            radius += max(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
    return radius
