"""Binary segmentation losses of the lecture ("Portrait": loss functions for segmentation), and Lovász hinge.

Notation of the lecture: ground truth ``p ∈ {0, 1}^n``, prediction ``p̃ = σ(t) ∈ [0, 1]^n`` from the network's
logits ``t`` (one per pixel), ``σ(t) = 1 / (1 + e^{−t})``.

* Negative log-likelihood per image: ``−Σ_i [p_i log p̃_i + (1 − p_i) log(1 − p̃_i)]``. Computed from the
  logits (``binary_cross_entropy_with_logits``, stable for any ``t``) and **divided by n**: the per-pixel mean
  keeps the term in the same range as ``1 − J̃ ∈ [0, 1]`` whatever the image size, so a Jaccard weight w means
  the same at 128² and 512² (the lecture's sum is ``n`` times this value).
* Soft Jaccard: ``J̃(p, p̃) = ⟨p, p̃⟩ / (‖p‖₁ + ‖p̃‖₁ − ⟨p, p̃⟩)``, equal to the Jaccard index (IoU) when p̃ is
  binary; the loss is ``1 − J̃``.
* Combined: ``NLL + w · (1 − J̃)`` (the lecture: "the log-likelihood and Jaccard are typically combined with a
  weight").
* Lovász hinge (Berman, Rannen Triki & Blaschko, "The Lovász-Softmax loss", CVPR 2018, Eq. 8–10): the Lovász
  extension of the Jaccard loss applied to the hinge errors ``max(0, 1 − t_i (2 p_i − 1))``; a tight convex
  surrogate of ``1 − J`` on the logits.

All functions take logits (or probabilities where said) and targets of shape (B, 1, H, W) (a (B, H, W) target
is accepted too); "per image" means the quantity is computed for each image and averaged over the batch,
"per batch" that the sums run over every pixel of the batch at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SURROGATES",
    "SegmentationLoss",
    "lovasz_hinge",
    "nll_per_image",
    "soft_jaccard_index",
    "soft_jaccard_loss",
    "split_aux",
]

SURROGATES: tuple[str, ...] = ("soft_jaccard", "lovasz")
DEFAULT_EPS = 1e-6


def _check(pred: Tensor, target: Tensor) -> Tensor:
    """``target`` as ``pred``'s shape and dtype; (B, H, W) targets get their channel axis."""
    if target.ndim == pred.ndim - 1:
        target = target.unsqueeze(1)
    if pred.ndim != 4 or target.shape != pred.shape:
        raise ValueError(
            f"expected logits (B, 1, H, W) and a target of the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    return target.to(pred.dtype)


def nll_per_image(logits: Tensor, target: Tensor) -> Tensor:
    """Per-image negative log-likelihood, averaged over pixels: (B, 1, H, W) ×2 → (B,).

    ``−(1/n) Σ_i [p_i log σ(t_i) + (1 − p_i) log(1 − σ(t_i))]`` with ``p`` = target, ``t`` = logits;
    the lecture's per-image sum is ``n`` times this.
    """
    target = _check(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(dim=1)


def soft_jaccard_index(
    probs: Tensor, target: Tensor, per_image: bool = True, eps: float = DEFAULT_EPS
) -> Tensor:
    """Soft Jaccard ``J̃(p, p̃) = (⟨p, p̃⟩ + ε) / (‖p‖₁ + ‖p̃‖₁ − ⟨p, p̃⟩ + ε)`` of probabilities p̃ in [0, 1].

    Args:
        probs: p̃, (B, 1, H, W) in [0, 1].
        target: p, (B, 1, H, W) (or (B, H, W)) in {0, 1} (soft targets in [0, 1] are allowed).
        per_image: True → one J̃ per image, shape (B,); False → one J̃ over all pixels of the batch, shape ().
        eps: ε only settles 0 / 0: an empty target with an empty prediction gives J̃ = 1. With the default
            1e-6 it changes no other value measurably, so J̃ equals the hard Jaccard on binary inputs.
    """
    target = _check(probs, target)
    dims = (1, 2, 3) if per_image else (0, 1, 2, 3)
    intersection = (probs * target).sum(dim=dims)
    union = probs.sum(dim=dims) + target.sum(dim=dims) - intersection
    return (intersection + eps) / (union + eps)


def soft_jaccard_loss(
    logits: Tensor, target: Tensor, per_image: bool = True, eps: float = DEFAULT_EPS
) -> Tensor:
    """``1 − J̃(p, σ(t))``: per image then averaged over the batch, or over the whole batch; a scalar."""
    return (1.0 - soft_jaccard_index(torch.sigmoid(logits), target, per_image, eps)).mean()


def _lovasz_gradient(sorted_target: Tensor) -> Tensor:
    """Berman et al. Eq. 9: ``g_i = Δ_J({π_1..π_i}) − Δ_J({π_1..π_{i−1}})`` along the last dim, where the
    pixels are sorted by decreasing error and ``Δ_J(M) = 1 − |P \\ M| / |P ∪ M|`` is the Jaccard loss of
    mispredicting the pixels M (P = the foreground pixels)."""
    positives = sorted_target.sum(dim=-1, keepdim=True)
    intersection = positives - sorted_target.cumsum(dim=-1)
    union = positives + (1.0 - sorted_target).cumsum(dim=-1)
    jaccard_loss = 1.0 - intersection / union
    return torch.cat([jaccard_loss[..., :1], jaccard_loss[..., 1:] - jaccard_loss[..., :-1]], dim=-1)


def lovasz_hinge(logits: Tensor, target: Tensor, per_image: bool = True) -> Tensor:
    """Lovász hinge (Berman et al., CVPR 2018): ``Σ_i g_i(m) · m_(i)`` with hinge errors
    ``m_i = max(0, 1 − t_i (2 p_i − 1))`` sorted in decreasing order and g the Lovász gradient of the
    Jaccard loss; per image then averaged, or over the whole batch. Returns a scalar.

    For errors in {0, 1} it equals ``1 − J`` of the prediction that gets exactly the pixels with error 1
    wrong; it is piecewise linear in the logits.
    """
    target = _check(logits, target)
    rows = len(logits) if per_image else 1  # one sorted row per image, or one for the batch
    logits, target = logits.reshape(rows, -1), target.reshape(rows, -1)
    errors = 1.0 - logits * (2.0 * target - 1.0)
    errors_sorted, order = errors.sort(dim=1, descending=True)
    gradient = _lovasz_gradient(target.gather(1, order))
    return (F.relu(errors_sorted) * gradient).sum(dim=1).mean()


def split_aux(output: Tensor | tuple[Tensor, ...] | list[Tensor]) -> tuple[Tensor, Tensor | None]:
    """(main logits, auxiliary logits or None) from a network output: a tensor or (main, aux)."""
    if isinstance(output, (tuple, list)):
        if len(output) != 2:
            raise ValueError(f"expected logits or (logits, aux_logits), got a sequence of {len(output)}")
        return output[0], output[1]
    return output, None


class SegmentationLoss(nn.Module):
    """``nll_weight · NLL + jaccard_weight · surrogate`` (+ ``aux_weight`` × the same on auxiliary logits).

    The lecture's combined loss ``NLL + w · (1 − J̃)`` is ``nll_weight=1, jaccard_weight=w``; NLL only is
    ``jaccard_weight=0``; soft Jaccard only is ``nll_weight=0``.

    Args:
        nll_weight: weight of the per-pixel-mean negative log-likelihood (:func:`nll_per_image`).
        jaccard_weight: w, weight of the IoU surrogate.
        surrogate: ``"soft_jaccard"`` (``1 − J̃``, the lecture's) or ``"lovasz"`` (:func:`lovasz_hinge`).
        per_image: the surrogate per image then averaged (True) or over the whole batch (False).
        aux_weight: weight of the same loss on a network's auxiliary logits (PSPNet: 0.4); used when the
            network returns ``(logits, aux_logits)`` (PSPNet in training mode), ignored otherwise.
        eps: ε of :func:`soft_jaccard_index`.

    ``forward(output, target)`` takes logits (B, 1, H, W) or (logits, aux_logits) and a {0, 1} target of the
    same shape, and returns the scalar loss; :meth:`terms` returns the parts too.
    """

    def __init__(
        self,
        nll_weight: float = 1.0,
        jaccard_weight: float = 1.0,
        surrogate: str = "soft_jaccard",
        per_image: bool = True,
        aux_weight: float = 0.4,
        eps: float = DEFAULT_EPS,
    ) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
        if min(nll_weight, jaccard_weight, aux_weight) < 0 or nll_weight + jaccard_weight == 0:
            raise ValueError(
                "nll_weight, jaccard_weight and aux_weight must be >= 0 and not both of the first two 0, got "
                f"{nll_weight}, {jaccard_weight}, {aux_weight}"
            )
        self.nll_weight, self.jaccard_weight = nll_weight, jaccard_weight
        self.surrogate, self.per_image = surrogate, per_image
        self.aux_weight, self.eps = aux_weight, eps

    def _single(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        nll = nll_per_image(logits, target).mean()
        if self.surrogate == "soft_jaccard":
            jaccard = soft_jaccard_loss(logits, target, self.per_image, self.eps)
        else:
            jaccard = lovasz_hinge(logits, target, self.per_image)
        return self.nll_weight * nll + self.jaccard_weight * jaccard, nll, jaccard

    def terms(self, output: Tensor | tuple[Tensor, Tensor], target: Tensor) -> dict[str, Tensor]:
        """``{"loss", "nll", "jaccard"}`` of the main logits, plus ``"aux"`` (the auxiliary head's combined
        loss, before ``aux_weight``) when the output has auxiliary logits."""
        logits, aux_logits = split_aux(output)
        loss, nll, jaccard = self._single(logits, target)
        out = {"nll": nll, "jaccard": jaccard}
        if aux_logits is not None and self.aux_weight > 0:
            out["aux"] = self._single(aux_logits, target)[0]
            loss = loss + self.aux_weight * out["aux"]
        out["loss"] = loss
        return out

    def forward(self, output: Tensor | tuple[Tensor, Tensor], target: Tensor) -> Tensor:
        return self.terms(output, target)["loss"]

    def extra_repr(self) -> str:
        return (
            f"nll_weight={self.nll_weight}, jaccard_weight={self.jaccard_weight}, "
            f"surrogate={self.surrogate!r}, per_image={self.per_image}, aux_weight={self.aux_weight}"
        )
