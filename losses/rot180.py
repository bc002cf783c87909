"""180-degree-rotation-invariant reconstruction loss for Fourier phase retrieval.

``|F x|`` cannot distinguish ``x`` from its 180-degree rotation ``R180(x)``, so the loss takes per sample the
better orientation of the prediction (Dekel & Gugel, "Phase retrieval via deep auto-decoders", ICFSP 2022):
``L(x_hat, x) = min(err(x_hat, x), err(R180(x_hat), x))``.
"""

from __future__ import annotations

from torch import Tensor, nn

from operators.fourier import rot180

__all__ = ["NORMS", "Rot180InvariantLoss", "per_sample_error", "rot180_invariant_error"]

NORMS: tuple[str, ...] = ("l2", "l1")


def per_sample_error(pred: Tensor, target: Tensor, norm: str = "l2") -> Tensor:
    """Mean squared ("l2") or absolute ("l1") error over all non-batch dims: (B, ...) x2 -> (B,)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    diff = pred - target
    err = diff.square() if norm == "l2" else diff.abs()
    return err.flatten(1).mean(dim=1)


def rot180_invariant_error(pred: Tensor, target: Tensor, norm: str = "l2") -> Tensor:
    """Per-sample ``min(err(pred, target), err(rot180(pred), target))``.

    Args:
        pred, target: (B, C, H, W).
        norm: ``"l2"`` (mean squared error) or ``"l1"`` (mean absolute error) over C, H, W.

    Returns:
        (B,) errors; the gradient flows through the better orientation of each sample.
    """
    direct = per_sample_error(pred, target, norm)
    rotated = per_sample_error(rot180(pred), target, norm)
    return direct.minimum(rotated)


class Rot180InvariantLoss(nn.Module):
    """Batch mean of :func:`rot180_invariant_error`."""

    def __init__(self, norm: str = "l2") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return rot180_invariant_error(pred, target, self.norm).mean()

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"
