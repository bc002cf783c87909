"""Classical one-tap photo corrections: no training, no learned parameters, (B, 3, H, W) in [0, 1] → same.

Each is a pure function with a thin ``nn.Module`` (its settings as constructor arguments, no parameters), so
the test loop can run them like a trained model. All outputs are clipped to [0, 1].

* gray world (Buchsbaum, "A spatial processor model for object colour perception", J. Franklin Inst. 1980):
  the scene averages to grey, so per-channel gains ``g_c = m̄ / m_c`` (``m_c`` the channel means, ``m̄`` their
  mean) make the channel means equal. Applied in linear light by default (sensor gains; kornia's sRGB
  transfer functions), or on the encoded values.
* auto-levels: a percentile contrast stretch ``y = (x − lo) / (hi − lo)`` with ``lo``, ``hi`` the ``low`` and
  ``high`` quantiles (0.5 % / 99.5 %) of each channel (``"channel"``, also fixes a cast), of the BT.709 luma
  (``"luma"``, keeps hue), or of all three channels pooled (``"joint"``).
* auto-gamma: ``y = x^γ``, ``γ = log(target) / log(mean luma)``, so the mean luma moves to ``target`` (0.5,
  mid-grey) exactly for a grey image and approximately otherwise (the power of a mean is not the mean of the
  powers; measured within ~0.03 on the real pairs).
* CLAHE on lightness (Zuiderveld, "Contrast Limited Adaptive Histogram Equalization", Graphics Gems IV,
  1994): kornia's ``equalize_clahe`` on CIELAB L* / 100, a* and b* kept, back to sRGB.
* :func:`combined`: gray world → auto-levels → auto-gamma.

Quantiles of large images come from a regular subsample of at most ``2**20`` pixels (``torch.quantile`` sorts
its input and refuses more than 2^24 values; a 12-Mpx photo has 36 M).
"""

from __future__ import annotations

import math

import kornia.color
import kornia.enhance
import torch
from torch import Tensor, nn

from operators.photo_degradation import linear_to_srgb, luma, srgb_to_linear

__all__ = [
    "LEVELS_MODES",
    "AutoGamma",
    "AutoLevels",
    "ClaheLightness",
    "GrayWorld",
    "auto_gamma",
    "auto_levels",
    "clahe_lightness",
    "combined",
    "gray_world",
]

LEVELS_MODES: tuple[str, ...] = ("channel", "luma", "joint")
_MAX_QUANTILE_SAMPLES = 2**20


def _check_rgb(x: Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an RGB batch (B, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")


def _quantiles(values: Tensor, q: Tensor) -> Tensor:
    """Quantiles along the last dim of (..., N) → (..., len(q)), from a regular subsample if N > 2^20."""
    n = values.shape[-1]
    if n > _MAX_QUANTILE_SAMPLES:
        values = values[..., :: math.ceil(n / _MAX_QUANTILE_SAMPLES)]
    return torch.quantile(values, q.to(values.dtype), dim=-1).movedim(0, -1)


def gray_world(x: Tensor, linear: bool = True, eps: float = 1e-6) -> Tensor:
    """Gray-world white balance: ``y_c = g_c x_c``, ``g_c = mean_c'(m_c') / m_c``, clipped to [0, 1].

    ``linear=True`` takes the means and applies the gains in linear light (then re-encodes); ``False`` works
    on the encoded values. Either way the chosen means are equal afterwards (where nothing clips).
    """
    _check_rgb(x)
    v = srgb_to_linear(x) if linear else x
    means = v.mean(dim=(2, 3), keepdim=True).clamp_min(eps)
    v = v * (means.mean(dim=1, keepdim=True) / means)
    return (linear_to_srgb(v.clamp(0.0, 1.0)) if linear else v).clamp(0.0, 1.0)


def auto_levels(x: Tensor, low: float = 0.005, high: float = 0.995, mode: str = "luma") -> Tensor:
    """Percentile contrast stretch ``y = clip((x − lo) / (hi − lo), 0, 1)``; ``mode`` picks whose quantiles.

    ``"channel"``: ``lo_c, hi_c`` per channel; ``"luma"``: of the BT.709 luma, for all channels; ``"joint"``:
    of all values of the three channels. A flat image (``hi − lo < 1e-6``) is returned unchanged.
    """
    _check_rgb(x)
    if mode not in LEVELS_MODES:
        raise ValueError(f"mode must be one of {LEVELS_MODES}, got {mode!r}")
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    b = x.shape[0]
    q = torch.tensor([low, high])
    if mode == "channel":
        lo_hi = _quantiles(x.flatten(2), q).view(b, 3, 2, 1, 1)
    elif mode == "luma":
        lo_hi = _quantiles(luma(x).flatten(1), q).view(b, 1, 2, 1, 1)
    else:
        lo_hi = _quantiles(x.flatten(1), q).view(b, 1, 2, 1, 1)
    lo, hi = lo_hi[:, :, 0], lo_hi[:, :, 1]
    span = hi - lo
    flat = span < 1e-6
    y = (x - lo) / torch.where(flat, torch.ones_like(span), span)
    return torch.where(flat, x, y).clamp(0.0, 1.0)


def auto_gamma(x: Tensor, target: float = 0.5, eps: float = 1e-4) -> Tensor:
    """``y = x^γ``, ``γ = log(target) / log(mean luma)`` per image (γ clamped to [0.1, 10]), in [0, 1]."""
    _check_rgb(x)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target}")
    mean = luma(x).mean(dim=(1, 2, 3), keepdim=True).clamp(eps, 1 - eps)
    gamma = (math.log(target) / mean.log()).clamp(0.1, 10.0)
    return x.clamp(0.0, 1.0).pow(gamma)


def clahe_lightness(x: Tensor, clip_limit: float = 2.0, grid_size: tuple[int, int] = (8, 8)) -> Tensor:
    """CLAHE (kornia ``equalize_clahe``) on CIELAB L* / 100, a* b* kept; back to sRGB, clipped to [0, 1].

    ``clip_limit`` and ``grid_size`` as OpenCV's ``createCLAHE`` (common settings 2.0 and 8 × 8 tiles).
    """
    _check_rgb(x)
    lab = kornia.color.rgb_to_lab(x.clamp(0.0, 1.0))
    lightness = kornia.enhance.equalize_clahe(lab[:, :1] / 100.0, float(clip_limit), tuple(grid_size))
    return kornia.color.lab_to_rgb(torch.cat([lightness * 100.0, lab[:, 1:]], dim=1), clip=True)


class GrayWorld(nn.Module):
    """:func:`gray_world` as a module (no parameters)."""

    def __init__(self, linear: bool = True) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: Tensor) -> Tensor:
        return gray_world(x, self.linear)

    def extra_repr(self) -> str:
        return f"linear={self.linear}"


class AutoLevels(nn.Module):
    """:func:`auto_levels` as a module (no parameters)."""

    def __init__(self, low: float = 0.005, high: float = 0.995, mode: str = "luma") -> None:
        super().__init__()
        if mode not in LEVELS_MODES:
            raise ValueError(f"mode must be one of {LEVELS_MODES}, got {mode!r}")
        self.low, self.high, self.mode = low, high, mode

    def forward(self, x: Tensor) -> Tensor:
        return auto_levels(x, self.low, self.high, self.mode)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}, mode={self.mode!r}"


class AutoGamma(nn.Module):
    """:func:`auto_gamma` as a module (no parameters)."""

    def __init__(self, target: float = 0.5) -> None:
        super().__init__()
        self.target = target

    def forward(self, x: Tensor) -> Tensor:
        return auto_gamma(x, self.target)

    def extra_repr(self) -> str:
        return f"target={self.target}"


class ClaheLightness(nn.Module):
    """:func:`clahe_lightness` as a module (no parameters)."""

    def __init__(self, clip_limit: float = 2.0, grid_size: tuple[int, int] = (8, 8)) -> None:
        super().__init__()
        self.clip_limit, self.grid_size = float(clip_limit), tuple(grid_size)

    def forward(self, x: Tensor) -> Tensor:
        return clahe_lightness(x, self.clip_limit, self.grid_size)

    def extra_repr(self) -> str:
        return f"clip_limit={self.clip_limit}, grid_size={self.grid_size}"


def combined(levels_mode: str = "luma") -> nn.Sequential:
    """Gray world (linear light) → auto-levels (0.5 / 99.5 %) → auto-gamma (mean luma to 0.5)."""
    return nn.Sequential(GrayWorld(), AutoLevels(mode=levels_mode), AutoGamma())
