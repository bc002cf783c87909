"""Classical iterative Fourier phase retrieval (ER, HIO, RAAR), vectorised over the batch in torch.

All iterates live on the padded m x m grid. Constraint sets and projections:

* magnitude: ``P_M(z) = Re IFFT2(y * exp(i * angle(FFT2 z)))`` (orthonormal FFT; the real part is the
  projection onto real images);
* object: the Euclidean projection onto {inside the n x n ``support``, ``z >= 0``, optionally
  ``z <= upper``}: ``P_S(z) = clamp(z, 0, upper)`` inside the support, 0 outside. Without ``upper`` this is
  Fienup's ``z`` where feasible, else 0.

Updates, with ``u = P_M(x_k)``:

* ER (Fienup, Appl. Opt. 21(15), 1982): ``x_{k+1} = P_S(u)``;
* HIO (Fienup 1982), beta ~ 0.9: ``x_{k+1} = u`` where u is feasible, ``x_k - beta * (u - P_S(u))``
  elsewhere (= ``x_k - beta * u`` for the support / non-negativity violations of the original);
* RAAR (Luke, Inverse Problems 21, 2005), beta ~ 0.87:
  ``x_{k+1} = [beta/2 (R_S R_M + I) + (1 - beta) P_M] x_k`` with ``R = 2P - I``, i.e.
  ``x_{k+1} = beta * P_S(2u - x_k) + beta * x_k + (1 - 2 beta) * u`` (``= u`` where ``2u - x_k`` is feasible).

The upper bound (``upper=1`` for images in [0, 1]) is a prior the measurement alone does not give; it is off
by default (the classical baselines use support and non-negativity only).

Shrink-wrap (Marchesini et al., Phys. Rev. B 68, 2003; ``shrinkwrap_every`` > 0): every k iterations the
support becomes, per sample, the pixels where the current estimate ``P_S(P_M(x))`` blurred by a Gaussian of
width sigma exceeds ``shrinkwrap_threshold`` x its maximum (within the known n x n support); sigma decays
from ``shrinkwrap_sigma`` by 1 % per update to 1.5 px. It tightens the loose box support to the object.

HIO/RAAR iterates are not themselves feasible: the estimate is read out after (at least one) final ER step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from operators.fourier import crop_center, fourier_magnitude, pad_image, support_mask

__all__ = [
    "ALGORITHMS",
    "DEFAULT_BETA",
    "ClassicalPhaseRetrieval",
    "average_aligned",
    "error_reduction",
    "feasible_mask",
    "hybrid_input_output",
    "iterate",
    "magnitude_residual",
    "project_magnitude",
    "project_object",
    "raar",
    "random_phase_init",
    "shrinkwrap_support",
]

ALGORITHMS: tuple[str, ...] = ("er", "hio", "raar")
DEFAULT_BETA: dict[str, float] = {"er": 0.0, "hio": 0.9, "raar": 0.87}


def project_magnitude(x: Tensor, y: Tensor) -> Tensor:
    """``P_M(x) = Re IFFT2_ortho(y * exp(i * angle(FFT2_ortho x)))``; x, y real (B, C, m, m)."""
    z = torch.fft.fft2(x, norm="ortho")
    return torch.fft.ifft2(torch.polar(y, z.angle()), norm="ortho").real


def feasible_mask(x: Tensor, support: Tensor, nonnegative: bool = True, upper: float | None = None) -> Tensor:
    """Boolean mask of pixels satisfying the object constraints: inside ``support`` (m, m), ``x >= 0`` (if
    ``nonnegative``) and ``x <= upper`` (if given)."""
    mask = support.expand_as(x)
    if nonnegative:
        mask = mask & (x >= 0)
    if upper is not None:
        mask = mask & (x <= upper)
    return mask


def project_object(
    x: Tensor, support: Tensor, nonnegative: bool = True, upper: float | None = None
) -> Tensor:
    """``P_S(x)``: clamp to [0 (if ``nonnegative``), ``upper`` (if given)] inside the support, 0 outside."""
    if nonnegative or upper is not None:
        x = x.clamp(0.0 if nonnegative else None, upper)
    return torch.where(support, x, torch.zeros_like(x))


def magnitude_residual(x_padded: Tensor, y: Tensor) -> Tensor:
    """Relative Fourier-magnitude misfit ``|| |F x| - y || / ||y||`` per sample: (B, C, m, m) x2 -> (B,)."""
    num = (fourier_magnitude(x_padded) - y).flatten(1).norm(dim=1)
    return num / y.flatten(1).norm(dim=1).clamp_min(torch.finfo(y.dtype).tiny)


def error_reduction(
    x: Tensor,
    y: Tensor,
    support: Tensor,
    iterations: int,
    nonnegative: bool = True,
    upper: float | None = None,
) -> Tensor:
    """``iterations`` ER steps ``x <- P_S(P_M(x))`` (Fienup 1982).

    x, y: (B, C, m, m); support: bool (m, m). Returns a feasible iterate (the estimate).
    """
    for _ in range(iterations):
        x = project_object(project_magnitude(x, y), support, nonnegative, upper)
    return x


def hybrid_input_output(
    x: Tensor,
    y: Tensor,
    support: Tensor,
    iterations: int,
    beta: float = 0.9,
    nonnegative: bool = True,
    upper: float | None = None,
) -> Tensor:
    """``iterations`` HIO steps (Fienup 1982): ``x <- u`` where ``u = P_M(x)`` is feasible, else
    ``x - beta * (u - P_S(u))`` (``x - beta * u`` without ``upper``).

    Returns the last (infeasible) input iterate; read out with :func:`error_reduction` or ``P_S(P_M(x))``.
    """
    for _ in range(iterations):
        u = project_magnitude(x, y)
        feasible = feasible_mask(u, support, nonnegative, upper)
        x = torch.where(feasible, u, x - beta * (u - project_object(u, support, nonnegative, upper)))
    return x


def raar(
    x: Tensor,
    y: Tensor,
    support: Tensor,
    iterations: int,
    beta: float = 0.87,
    nonnegative: bool = True,
    upper: float | None = None,
) -> Tensor:
    """``iterations`` RAAR steps (Luke 2005): ``x <- b * P_S(2u - x) + b * x + (1 - 2b) * u``, ``u = P_M(x)``
    (``u`` where ``2u - x`` is feasible). Returns the last iterate; read out with :func:`error_reduction`.
    """
    for _ in range(iterations):
        u = project_magnitude(x, y)
        reflected = project_object(2.0 * u - x, support, nonnegative, upper)
        x = beta * reflected + beta * x + (1.0 - 2.0 * beta) * u
    return x


def iterate(
    method: str,
    x: Tensor,
    y: Tensor,
    support: Tensor,
    iterations: int,
    beta: float | None = None,
    nonnegative: bool = True,
    upper: float | None = None,
) -> Tensor:
    """Dispatch to ``"er"``, ``"hio"`` or ``"raar"``; ``beta=None`` uses :data:`DEFAULT_BETA`."""
    if method not in ALGORITHMS:
        raise ValueError(f"method must be one of {ALGORITHMS}, got {method!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if method == "er":
        return error_reduction(x, y, support, iterations, nonnegative, upper)
    b = DEFAULT_BETA[method] if beta is None else beta
    if method == "hio":
        return hybrid_input_output(x, y, support, iterations, b, nonnegative, upper)
    return raar(x, y, support, iterations, b, nonnegative, upper)


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).view(1, 1, -1)
    b, c, h, w = x.shape
    flat = x.reshape(b * c, 1, h, w)
    flat = torch.nn.functional.conv2d(flat, g.view(1, 1, 1, -1), padding=(0, radius))
    flat = torch.nn.functional.conv2d(flat, g.view(1, 1, -1, 1), padding=(radius, 0))
    return flat.view(b, c, h, w)


def shrinkwrap_support(estimate: Tensor, support: Tensor, sigma: float, threshold: float) -> Tensor:
    """Per-sample support (B, C, m, m): ``blur_sigma(|estimate|) > threshold * max``, within ``support``."""
    blurred = _gaussian_blur(estimate.abs(), sigma)
    peak = blurred.flatten(1).amax(dim=1).view(-1, *([1] * (estimate.ndim - 1)))
    return (blurred > threshold * peak) & support


def average_aligned(estimates: Tensor, residual: Tensor, reference: Tensor, k: int) -> Tensor:
    """Mean of the ``k`` lowest-residual estimates per sample, each first turned to whichever of itself and
    its 180-degree rotation (on the centred m x m grid: the twin image, same magnitudes) is closer to
    ``reference``. estimates (R, B, C, m, m), residual (R, B), reference (B, C, m, m) -> (B, C, m, m)."""
    k = min(k, estimates.shape[0])
    order = residual.argsort(dim=0)[:k]  # (k, B)
    picked = estimates[order, torch.arange(estimates.shape[1], device=estimates.device)]  # (k, B, C, m, m)
    turned = torch.flip(picked, dims=(-2, -1))
    keep = (picked - reference).square().flatten(2).sum(2) <= (turned - reference).square().flatten(2).sum(2)
    return torch.where(keep[..., None, None, None], picked, turned).mean(dim=0)


def random_phase_init(
    y: Tensor,
    support: Tensor,
    generator: torch.Generator | None = None,
    nonnegative: bool = True,
    upper: float | None = None,
) -> Tensor:
    """Random start ``P_S(Re IFFT2_ortho(y * exp(i phi)))``, ``phi ~ U(-pi, pi)`` i.i.d. per frequency."""
    phi = (torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype) * 2.0 - 1.0) * math.pi
    x = torch.fft.ifft2(torch.polar(y, phi), norm="ortho").real
    return project_object(x, support, nonnegative, upper)


class ClassicalPhaseRetrieval(nn.Module):
    """Iterative phase retrieval baseline with random restarts: y (B, 1, m, m) -> x_hat (B, 1, n, n).

    Each sample is solved from ``restarts`` starts (restart 0 from ``x0`` if given, otherwise all from
    :func:`random_phase_init` drawn with a ``torch.Generator`` seeded with ``seed`` at every call, so results
    are reproducible); each runs ``iterations`` steps of ``algorithm`` followed by ``final_er_iterations``
    ER steps (at least one, to read out a feasible estimate). Per sample the restart whose (clamped)
    estimate has the lowest :func:`magnitude_residual` is returned, cropped to n x n. No trainable parameters;
    runs under ``torch.no_grad``.

    Args:
        algorithm: ``"er"``, ``"hio"`` or ``"raar"``.
        image_size: n. pad: zero-padding per side (m = n + 2 * pad).
        iterations: main iterations per restart.
        beta: HIO/RAAR feedback (None: 0.9 for HIO, 0.87 for RAAR; ignored by ER).
        restarts: number of starts per sample (>= 1).
        final_er_iterations: ER steps after the main loop (values < 1 act as 1).
        seed: seed of the restart generator.
        clamp_output: clamp x_hat to [0, 1] (before the residual-based selection).
        upper: also project the iterates onto ``x <= upper`` (1: the images' range; None: off).
        shrinkwrap_every: update the support by shrink-wrap every this many iterations (0: the fixed box).
        shrinkwrap_sigma, shrinkwrap_threshold: the first blur width (px) and the relative threshold.
        average_best: return the mean of the ``average_best`` lowest-residual restarts (each turned by 180
            degrees if that brings it closer to the best one) instead of the best alone (1: the best).
    """

    def __init__(
        self,
        algorithm: str = "hio",
        image_size: int = 32,
        pad: int = 4,
        iterations: int = 500,
        beta: float | None = None,
        restarts: int = 4,
        final_er_iterations: int = 50,
        seed: int = 0,
        clamp_output: bool = True,
        upper: float | None = None,
        shrinkwrap_every: int = 0,
        shrinkwrap_sigma: float = 3.0,
        shrinkwrap_threshold: float = 0.1,
        average_best: int = 1,
    ) -> None:
        super().__init__()
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if image_size < 1 or pad < 0:
            raise ValueError(f"need image_size >= 1 and pad >= 0, got image_size={image_size}, pad={pad}")
        if iterations < 0 or final_er_iterations < 0:
            raise ValueError(
                f"iterations and final_er_iterations must be >= 0, got {iterations}, {final_er_iterations}"
            )
        if restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {restarts}")
        if beta is not None and not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be None or in (0, 1], got {beta}")
        if upper is not None and upper <= 0:
            raise ValueError(f"upper must be None or > 0, got {upper}")
        if shrinkwrap_every < 0 or shrinkwrap_sigma <= 0 or not 0.0 <= shrinkwrap_threshold < 1.0:
            raise ValueError(
                "need shrinkwrap_every >= 0, shrinkwrap_sigma > 0 and shrinkwrap_threshold in [0, 1), got "
                f"{shrinkwrap_every}, {shrinkwrap_sigma}, {shrinkwrap_threshold}"
            )
        self.algorithm = algorithm
        self.image_size = image_size
        self.pad = pad
        self.iterations = iterations
        self.beta = DEFAULT_BETA[algorithm] if beta is None else float(beta)
        self.restarts = restarts
        self.final_er_iterations = final_er_iterations
        self.seed = seed
        self.clamp_output = clamp_output
        self.upper = None if upper is None else float(upper)
        self.shrinkwrap_every = shrinkwrap_every
        self.shrinkwrap_sigma = float(shrinkwrap_sigma)
        self.shrinkwrap_threshold = float(shrinkwrap_threshold)
        if average_best < 1:
            raise ValueError(f"average_best must be >= 1, got {average_best}")
        self.average_best = average_best
        self.support: Tensor
        self.register_buffer("support", support_mask(image_size, pad), persistent=False)

    @property
    def measured_size(self) -> int:
        return self.image_size + 2 * self.pad

    @torch.no_grad()
    def forward(self, y: Tensor, x0: Tensor | None = None) -> Tensor:
        m, n = self.measured_size, self.image_size
        if y.ndim != 4 or y.shape[1] != 1 or y.shape[-2:] != (m, m):
            raise ValueError(f"y must have shape (B, 1, {m}, {m}), got {tuple(y.shape)}")
        if x0 is not None and x0.shape != (y.shape[0], 1, n, n):
            raise ValueError(f"x0 must have shape ({y.shape[0]}, 1, {n}, {n}), got {tuple(x0.shape)}")
        if not y.is_floating_point():
            y = y.float()
        b, r = y.shape[0], self.restarts
        support = self.support.to(y.device)
        generator = torch.Generator(device=y.device).manual_seed(self.seed)
        # restarts stacked along the batch: index = restart * B + sample
        y_rep = y.repeat(r, 1, 1, 1)
        upper = self.upper
        x = random_phase_init(y_rep, support, generator, upper=upper)
        if x0 is not None:
            x[:b] = project_object(pad_image(x0.to(y.dtype), self.pad), support, upper=upper)
        x, support = self._iterate(x, y_rep, support)
        x = error_reduction(x, y_rep, support, max(1, self.final_er_iterations), upper=upper)
        if self.clamp_output:
            x = x.clamp(0.0, 1.0)
        residual = magnitude_residual(x, y_rep).view(r, b)
        best = residual.argmin(dim=0)  # (B,)
        x = x.view(r, b, 1, m, m)
        chosen = x[best, torch.arange(b, device=y.device)]
        if self.average_best > 1:
            chosen = average_aligned(x, residual, chosen, self.average_best)
        return crop_center(chosen, n)

    def _iterate(self, x: Tensor, y: Tensor, support: Tensor) -> tuple[Tensor, Tensor]:
        """The main iterations, with shrink-wrap support updates if configured: (last iterate, support)."""
        every = self.shrinkwrap_every
        if every <= 0:
            return iterate(
                self.algorithm, x, y, support, self.iterations, self.beta, upper=self.upper
            ), support
        sigma, box, done = self.shrinkwrap_sigma, support, 0
        while done < self.iterations:
            steps = min(every, self.iterations - done)
            x = iterate(self.algorithm, x, y, support, steps, self.beta, upper=self.upper)
            done += steps
            estimate = project_object(project_magnitude(x, y), support, upper=self.upper)
            support = shrinkwrap_support(estimate, box, sigma, self.shrinkwrap_threshold)
            sigma = max(1.5, 0.99 * sigma)
        return x, support

    def extra_repr(self) -> str:
        return (
            f"algorithm={self.algorithm!r}, image_size={self.image_size}, pad={self.pad}, "
            f"iterations={self.iterations}, beta={self.beta}, restarts={self.restarts}, "
            f"final_er_iterations={self.final_er_iterations}, seed={self.seed}, upper={self.upper}, "
            f"shrinkwrap_every={self.shrinkwrap_every}"
        )
