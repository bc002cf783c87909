"""Fourier-magnitude forward operator for phase retrieval.

Measurement model (Dekel & Gugel, "Phase retrieval via deep auto-decoders", ICFSP 2022; Fienup, Appl. Opt.
1982): an image ``x`` in [0, 1]^(n x n) is zero-padded by ``pad`` pixels per side to ``m = n + 2 * pad`` and
measured as ``y = |FFT2(pad(x))|`` with the orthonormal FFT (``norm="ortho"``, so ``||y|| = ||x||``).
``|F x|`` of a real image is invariant to circular shifts and to the 180-degree rotation of ``x`` on the
padded grid.

Noise conventions (optional, applied to ``y``):

* ``"gaussian"``: ``y_noisy = max(y + noise_std * N(0, 1), 0)``;
* ``"poisson"``: photon-count noise on the intensity ``I = y**2``. Per sample, intensities are scaled so the
  mean expected count per measurement pixel is ``photons``: ``counts ~ Poisson(photons * I / mean(I))``,
  ``y_noisy = sqrt(counts * mean(I) / photons)``. Larger ``photons`` = less noise (SNR ~ sqrt(counts)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "NOISE_TYPES",
    "PAD_MODES",
    "FourierMagnitude",
    "add_gaussian_noise",
    "add_poisson_noise",
    "combine_magnitude_phase",
    "crop_center",
    "fourier_magnitude",
    "pad_image",
    "rot180",
    "support_mask",
]

PAD_MODES: tuple[str, ...] = ("constant", "edge")
NOISE_TYPES: tuple[str, ...] = ("gaussian", "poisson")


def pad_image(x: Tensor, pad: int, mode: str = "constant") -> Tensor:
    """Pad the last two dims by ``pad`` pixels per side: (B, C, n, n) -> (B, C, n + 2p, n + 2p).

    ``mode="constant"`` pads with zeros (the PR measurement model), ``"edge"`` replicates border pixels.
    """
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}")
    if pad == 0:
        return x
    if mode == "constant":
        return F.pad(x, (pad, pad, pad, pad), mode="constant", value=0.0)
    return F.pad(x, (pad, pad, pad, pad), mode="replicate")


def crop_center(x: Tensor, size: int) -> Tensor:
    """Central ``size x size`` crop of the last two dims (inverse of :func:`pad_image` for symmetric pads).

    For an odd size difference the extra pixel is dropped at the end (bottom/right).
    """
    h, w = x.shape[-2:]
    if not 0 < size <= min(h, w):
        raise ValueError(f"size must be in [1, {min(h, w)}] for a {h}x{w} input, got {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def fourier_magnitude(x: Tensor) -> Tensor:
    """``|FFT2(x)|`` over the last two dims with the orthonormal FFT (``norm="ortho"``); same shape as x."""
    return torch.fft.fft2(x, norm="ortho").abs()


def combine_magnitude_phase(magnitude_of: Tensor, phase_of: Tensor) -> Tensor:
    """``Re IFFT2(|F a| exp(i angle(F b)))``: the image with ``a``'s Fourier magnitude and ``b``'s phase
    (orthonormal FFT, same shapes). The lecture's Fig. 1 (Dekel & Gugel, ICFSP 2022): the result looks like
    ``b``, the phase donor -- most of an image's structure is in the phase."""
    if magnitude_of.shape != phase_of.shape:
        raise ValueError(f"need equal shapes, got {tuple(magnitude_of.shape)} and {tuple(phase_of.shape)}")
    magnitude = fourier_magnitude(magnitude_of)
    phase = torch.fft.fft2(phase_of, norm="ortho").angle()
    return torch.fft.ifft2(torch.polar(magnitude, phase), norm="ortho").real


def rot180(x: Tensor) -> Tensor:
    """Rotate by 180 degrees: flip the last two dims (``x[..., ::-1, ::-1]``)."""
    return torch.flip(x, dims=(-2, -1))


def support_mask(image_size: int, pad: int, device: torch.device | None = None) -> Tensor:
    """Boolean (m, m) mask, m = image_size + 2 * pad, True on the central image_size x image_size support."""
    if image_size < 1 or pad < 0:
        raise ValueError(f"need image_size >= 1 and pad >= 0, got image_size={image_size}, pad={pad}")
    m = image_size + 2 * pad
    mask = torch.zeros(m, m, dtype=torch.bool, device=device)
    mask[pad : pad + image_size, pad : pad + image_size] = True
    return mask


def add_gaussian_noise(y: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """``max(y + std * N(0, 1), 0)`` (magnitudes stay non-negative)."""
    noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
    return (y + std * noise).clamp_min(0.0)


def add_poisson_noise(y: Tensor, photons: float, generator: torch.Generator | None = None) -> Tensor:
    """Photon-count noise on ``I = y**2``, ``photons`` = mean expected count per pixel (module docstring).

    Per sample (mean over all non-batch dims): ``y_noisy = sqrt(Poisson(photons * I / mean(I)) * mean(I) /
    photons)``. Not differentiable w.r.t. ``y`` (sampling).
    """
    intensity = y.square()
    mean = intensity.flatten(1).mean(dim=1).clamp_min(torch.finfo(y.dtype).tiny)
    mean = mean.view(-1, *([1] * (y.ndim - 1)))
    rate = photons * intensity / mean
    counts = torch.poisson(rate, generator=generator)
    return (counts * mean / photons).sqrt()


class FourierMagnitude(nn.Module):
    """PR measurement ``y = |FFT2_ortho(pad(x))|`` (+ optional noise): (B, C, n, n) -> (B, C, m, m).

    Args:
        pad: zero-padding per side (oversampling: m = n + 2 * pad).
        pad_mode: ``"constant"`` (zeros, the standard model) or ``"edge"``.
        noise: ``None``, ``"gaussian"`` (uses ``noise_std``) or ``"poisson"`` (uses ``photons``).
        noise_std: Gaussian std on ``y`` (>= 0).
        photons: mean photon count per measurement pixel for Poisson noise (> 0).
    """

    def __init__(
        self,
        pad: int,
        pad_mode: str = "constant",
        noise: str | None = None,
        noise_std: float = 0.0,
        photons: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(pad, int) or pad < 0:
            raise ValueError(f"pad must be an integer >= 0, got {pad!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        if noise is not None and noise not in NOISE_TYPES:
            raise ValueError(f"noise must be None or one of {NOISE_TYPES}, got {noise!r}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if noise == "poisson" and (photons is None or photons <= 0):
            raise ValueError(f"noise='poisson' needs photons > 0 (mean count per pixel), got {photons!r}")
        if photons is not None and photons <= 0:
            raise ValueError(f"photons must be None or > 0, got {photons}")
        self.pad = pad
        self.pad_mode = pad_mode
        self.noise = noise
        self.noise_std = float(noise_std)
        self.photons = None if photons is None else float(photons)

    def measured_size(self, image_size: int) -> int:
        """m = image_size + 2 * pad."""
        return image_size + 2 * self.pad

    def support(self, image_size: int) -> Tensor:
        """Boolean (m, m) mask of the central image_size x image_size region of the padded grid."""
        return support_mask(image_size, self.pad)

    def add_noise(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Apply the configured noise model to clean magnitudes ``y`` (identity when ``noise`` is None)."""
        if self.noise == "gaussian" and self.noise_std > 0:
            return add_gaussian_noise(y, self.noise_std, generator)
        if self.noise == "poisson":
            assert self.photons is not None
            return add_poisson_noise(y, self.photons, generator)
        return y

    def measure_padded(self, x_padded: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``|FFT2_ortho(x_padded)|`` (+ noise) for an already padded (B, C, m, m) input."""
        return self.add_noise(fourier_magnitude(x_padded), generator)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.measure_padded(pad_image(x, self.pad, self.pad_mode), generator)

    def extra_repr(self) -> str:
        s = f"pad={self.pad}, pad_mode={self.pad_mode!r}, noise={self.noise!r}"
        if self.noise == "gaussian":
            s += f", noise_std={self.noise_std}"
        if self.noise == "poisson":
            s += f", photons={self.photons}"
        return s
