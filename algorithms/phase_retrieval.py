"""Classical iterative Fourier phase retrieval (ER, HIO, RAAR), vectorised over the batch in torch.

All iterates live on the padded m x m grid. Constraint sets and projections:

* magnitude: ``P_M(z) = Re IFFT2(y * exp(i * angle(FFT2 z)))`` (orthonormal FFT; the real part is the
  projection onto real images);
* object: ``P_S(z) = z`` where ``z`` is feasible (inside the n x n ``support`` and ``z >= 0``), else 0.

Updates, with ``u = P_M(x_k)``:

* ER (Fienup, Appl. Opt. 21(15), 1982): ``x_{k+1} = P_S(u)``;
* HIO (Fienup 1982), beta ~ 0.9: ``x_{k+1} = u`` where u is feasible, ``x_k - beta * u`` elsewhere;
* RAAR (Luke, Inverse Problems 21, 2005), beta ~ 0.87:
  ``x_{k+1} = [beta/2 (R_S R_M + I) + (1 - beta) P_M] x_k`` with ``R = 2P - I``, i.e. pointwise
  ``x_{k+1} = u`` where ``2u - x_k`` is feasible, ``beta * x_k + (1 - 2 beta) * u`` elsewhere.

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
    "error_reduction",
    "feasible_mask",
    "hybrid_input_output",
    "iterate",
    "magnitude_residual",
    "project_magnitude",
    "project_object",
    "raar",
    "random_phase_init",
]

ALGORITHMS: tuple[str, ...] = ("er", "hio", "raar")
DEFAULT_BETA: dict[str, float] = {"er": 0.0, "hio": 0.9, "raar": 0.87}


def project_magnitude(x: Tensor, y: Tensor) -> Tensor:
    """``P_M(x) = Re IFFT2_ortho(y * exp(i * angle(FFT2_ortho x)))``; x, y real (B, C, m, m)."""
    z = torch.fft.fft2(x, norm="ortho")
    return torch.fft.ifft2(torch.polar(y, z.angle()), norm="ortho").real


def feasible_mask(x: Tensor, support: Tensor, nonnegative: bool = True) -> Tensor:
    """Boolean mask of pixels satisfying the object constraints: inside ``support`` (m, m) and ``x >= 0``."""
    return support & (x >= 0) if nonnegative else support.expand_as(x)


def project_object(x: Tensor, support: Tensor, nonnegative: bool = True) -> Tensor:
    """``P_S(x)``: keep feasible pixels (inside the support, and >= 0 if ``nonnegative``), zero the rest."""
    return torch.where(feasible_mask(x, support, nonnegative), x, torch.zeros_like(x))


def magnitude_residual(x_padded: Tensor, y: Tensor) -> Tensor:
    """Relative Fourier-magnitude misfit ``|| |F x| - y || / ||y||`` per sample: (B, C, m, m) x2 -> (B,)."""
    num = (fourier_magnitude(x_padded) - y).flatten(1).norm(dim=1)
    return num / y.flatten(1).norm(dim=1).clamp_min(torch.finfo(y.dtype).tiny)


def error_reduction(
    x: Tensor, y: Tensor, support: Tensor, iterations: int, nonnegative: bool = True
) -> Tensor:
    """``iterations`` ER steps ``x <- P_S(P_M(x))`` (Fienup 1982).

    x, y: (B, C, m, m); support: bool (m, m). Returns a feasible iterate (the estimate).
    """
    for _ in range(iterations):
        x = project_object(project_magnitude(x, y), support, nonnegative)
    return x


def hybrid_input_output(
    x: Tensor, y: Tensor, support: Tensor, iterations: int, beta: float = 0.9, nonnegative: bool = True
) -> Tensor:
    """``iterations`` HIO steps (Fienup 1982): ``x <- u`` where ``u = P_M(x)`` feasible, else ``x - beta*u``.

    Returns the last (infeasible) input iterate; read out with :func:`error_reduction` or ``P_S(P_M(x))``.
    """
    for _ in range(iterations):
        u = project_magnitude(x, y)
        x = torch.where(feasible_mask(u, support, nonnegative), u, x - beta * u)
    return x


def raar(
    x: Tensor, y: Tensor, support: Tensor, iterations: int, beta: float = 0.87, nonnegative: bool = True
) -> Tensor:
    """``iterations`` RAAR steps (Luke 2005): ``x <- u`` if ``2u - x`` feasible, else ``b*x + (1-2b)*u``.

    ``u = P_M(x)``. Returns the last iterate; read out with :func:`error_reduction` or ``P_S(P_M(x))``.
    """
    for _ in range(iterations):
        u = project_magnitude(x, y)
        ok = feasible_mask(2.0 * u - x, support, nonnegative)
        x = torch.where(ok, u, beta * x + (1.0 - 2.0 * beta) * u)
    return x


def iterate(
    method: str,
    x: Tensor,
    y: Tensor,
    support: Tensor,
    iterations: int,
    beta: float | None = None,
    nonnegative: bool = True,
) -> Tensor:
    """Dispatch to ``"er"``, ``"hio"`` or ``"raar"``; ``beta=None`` uses :data:`DEFAULT_BETA`."""
    if method not in ALGORITHMS:
        raise ValueError(f"method must be one of {ALGORITHMS}, got {method!r}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if method == "er":
        return error_reduction(x, y, support, iterations, nonnegative)
    b = DEFAULT_BETA[method] if beta is None else beta
    if method == "hio":
        return hybrid_input_output(x, y, support, iterations, b, nonnegative)
    return raar(x, y, support, iterations, b, nonnegative)


def random_phase_init(
    y: Tensor, support: Tensor, generator: torch.Generator | None = None, nonnegative: bool = True
) -> Tensor:
    """Random start ``P_S(Re IFFT2_ortho(y * exp(i phi)))``, ``phi ~ U(-pi, pi)`` i.i.d. per frequency."""
    phi = (torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype) * 2.0 - 1.0) * math.pi
    x = torch.fft.ifft2(torch.polar(y, phi), norm="ortho").real
    return project_object(x, support, nonnegative)


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
        self.algorithm = algorithm
        self.image_size = image_size
        self.pad = pad
        self.iterations = iterations
        self.beta = DEFAULT_BETA[algorithm] if beta is None else float(beta)
        self.restarts = restarts
        self.final_er_iterations = final_er_iterations
        self.seed = seed
        self.clamp_output = clamp_output
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
        x = random_phase_init(y_rep, support, generator)
        if x0 is not None:
            x[:b] = project_object(pad_image(x0.to(y.dtype), self.pad), support)
        x = iterate(self.algorithm, x, y_rep, support, self.iterations, self.beta)
        x = error_reduction(x, y_rep, support, max(1, self.final_er_iterations))
        if self.clamp_output:
            x = x.clamp(0.0, 1.0)
        residual = magnitude_residual(x, y_rep).view(r, b)
        best = residual.argmin(dim=0)  # (B,)
        x = x.view(r, b, 1, m, m)[best, torch.arange(b, device=y.device)]
        return crop_center(x, n)

    def extra_repr(self) -> str:
        return (
            f"algorithm={self.algorithm!r}, image_size={self.image_size}, pad={self.pad}, "
            f"iterations={self.iterations}, beta={self.beta}, restarts={self.restarts}, "
            f"final_er_iterations={self.final_er_iterations}, seed={self.seed}"
        )
