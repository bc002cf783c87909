"""Batch-level augmentation of phase-retrieval targets: kornia transforms on (B, 1, H, W) images in [0, 1].

:func:`build_pr_augmentation` returns a :class:`~operators.batch_augmentation.BatchAugmentation` of
``batch["target"]``, which the DataModule applies on the device, in training only
(``ImageDataModule.on_after_batch_transfer``), before the forward model computes the measurement from it.
Each transform has its own probability and is drawn per image; a probability of 0 leaves it out. The
output is clamped to [0, 1]. The random draws use torch's global generator, so ``torch.manual_seed``
(Lightning's ``seed_everything``) makes them repeatable.

Transforms, in this order: horizontal flip, vertical flip, rotation by an angle in ±``rotation_degrees``,
scaling by a factor in ``scale_range`` (both bilinear, the outside filled by ``padding_mode``, reflection by
default, as PR-DAD pads before its affine augmentation), sharpening (kornia's sharpness factor in
``sharpness_range``, 1 = identity), Gaussian blur (``blur_kernel``, σ in ``blur_sigma``), gamma (exponent in
``gamma_range``). The default ranges of blur, gamma and scale are PR-DAD's for face images
(gugas81/pr-dad ``common/configs.py``), which draws every transform with one ``prob_aug`` (0.25; 0.5 for
CelebA). Configs: ``augmentation=pr_default`` (all of them), ``augmentation=pr_geometric`` (flips, rotation
and scaling only).

Cost per batch of 256×1×32×32 on the CPU (median of 60 batches after warm-up, one thread, torch 2.14 /
kornia 0.9, a shared 2-core machine): ``pr_default`` ≈ 16 ms, ``pr_geometric`` ≈ 9 ms, against ≈ 180 ms
for a forward + backward pass of PR-DAD I (``model=dad``, fp32) on the padded 256×1×40×40 batch there, i.e.
≈ 9 % more per training step. Most of it is kornia's per-transform overhead (sampling, affine grids, the
per-image probability gate), not the arithmetic. On 2 threads of the busy machine it was slower and noisy
(25-180 ms): set ``torch.set_num_threads`` to the free cores. Not measured on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.augmentation as K

from framework.errors import UserError
from operators.batch_augmentation import BatchAugmentation


def _check_probability(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise UserError(f"augmentation.{name}={p} must be a probability in [0, 1] (0 leaves it out)")
    return float(p)


def _check_range(name: str, value: Sequence[float], low: float = 0.0) -> tuple[float, float]:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise UserError(f"augmentation.{name}={list(value)} must be [min, max] with {low} <= min <= max")
    return float(value[0]), float(value[1])


def build_pr_augmentation(
    hflip_p: float = 0.4,
    vflip_p: float = 0.3,
    rotation_p: float = 0.4,
    rotation_degrees: float = 10.0,
    scale_p: float = 0.3,
    scale_range: Sequence[float] = (0.9, 1.2),
    sharpness_p: float = 0.3,
    sharpness_range: Sequence[float] = (1.0, 2.0),
    blur_p: float = 0.3,
    blur_kernel: int = 5,
    blur_sigma: Sequence[float] = (0.5, 1.5),
    gamma_p: float = 0.3,
    gamma_range: Sequence[float] = (0.85, 1.125),
    padding_mode: str = "reflection",
) -> BatchAugmentation:
    """The phase-retrieval augmentation (module docstring); each ``*_p`` is that transform's probability."""
    if rotation_degrees < 0:
        raise UserError(f"augmentation.rotation_degrees={rotation_degrees} must be >= 0 (angles in ±degrees)")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise UserError(f"augmentation.padding_mode={padding_mode} must be zeros, border or reflection")
    if blur_kernel < 3 or blur_kernel % 2 == 0:
        raise UserError(f"augmentation.blur_kernel={blur_kernel} must be an odd size >= 3")
    scale = _check_range("scale_range", scale_range, low=1e-3)
    sharpness = _check_range("sharpness_range", sharpness_range)
    sigma = _check_range("blur_sigma", blur_sigma, low=1e-3)
    gamma = _check_range("gamma_range", gamma_range, low=1e-3)
    candidates: list[tuple[str, float, object]] = [
        ("hflip_p", hflip_p, lambda p: K.RandomHorizontalFlip(p=p)),
        ("vflip_p", vflip_p, lambda p: K.RandomVerticalFlip(p=p)),
        (
            "rotation_p",
            rotation_p,
            lambda p: K.RandomAffine(float(rotation_degrees), padding_mode=padding_mode, p=p),
        ),
        ("scale_p", scale_p, lambda p: K.RandomAffine(0.0, scale=scale, padding_mode=padding_mode, p=p)),
        ("sharpness_p", sharpness_p, lambda p: K.RandomSharpness(sharpness=sharpness, p=p)),
        ("blur_p", blur_p, lambda p: K.RandomGaussianBlur((blur_kernel, blur_kernel), sigma, p=p)),
        ("gamma_p", gamma_p, lambda p: K.RandomGamma(gamma=gamma, p=p)),
    ]
    transforms = [
        make(p)  # type: ignore[operator]
        for name, p, make in candidates
        if _check_probability(name, p) > 0
    ]
    return BatchAugmentation(transforms, keys={"target": "image"})
