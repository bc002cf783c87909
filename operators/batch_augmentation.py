"""Batch-level augmentation of several entries of a batch with one random draw (kornia, on the device).

A DataModule calls its ``augmentation`` on the whole training batch dict (``ImageDataModule.
on_after_batch_transfer``); :class:`BatchAugmentation` is the usual one. It names the entries it moves
together and what each is:

* ``"image"``: every transform applies (geometric and photometric), output clamped to [0, 1];
* ``"mask"``: geometric transforms only, nearest-neighbour (kornia's ``AugmentationSequential`` mask rule);
  integer label masks, (B, H, W) or (B, 1, H, W), keep their dtype and shape.

So an image and its mask move together while colour jitter touches the image alone
(``keys={"input": "image", "target": "mask"}``), an input / target photo pair gets one geometric draw
(``keys={"input": "image", "target": "image"}``, geometric transforms only), and phase retrieval augments its
clean targets (``keys={"target": "image"}``). Entries not named pass through untouched. The random draws use
torch's global generator, so ``seed_everything`` makes them repeatable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import kornia.augmentation as K
import torch
from torch import nn

KINDS = {"image": "input", "mask": "mask"}  # our kind → kornia's data key


class BatchAugmentation(nn.Module):
    """``transforms`` (kornia augmentations) drawn once per batch and applied to the entries ``keys``
    (batch key → ``"image"`` | ``"mask"``), without gradients."""

    def __init__(self, transforms: Sequence[nn.Module], keys: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.keys = dict(keys or {"target": "image"})
        if bad := {k: v for k, v in self.keys.items() if v not in KINDS}:
            raise ValueError(f"augmentation keys {bad}: each kind must be one of {', '.join(KINDS)}")
        if "image" not in self.keys.values():
            raise ValueError(f"augmentation keys {self.keys} name no image: kornia needs one")
        data_keys = [KINDS[kind] for kind in self.keys.values()]
        self.transforms = K.AugmentationSequential(*transforms, data_keys=data_keys)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        if not len(self.transforms):
            return batch
        given = []
        for key, kind in self.keys.items():
            value = batch[key]
            if kind == "image" and value.ndim != 4:
                raise ValueError(
                    f"batch['{key}'] must be a (B, C, H, W) image batch, got {tuple(value.shape)}"
                )
            given.append(value.float() if kind == "image" or value.ndim == 4 else value[:, None].float())
        outputs = self.transforms(*given)
        outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
        out = dict(batch)
        for (key, kind), value in zip(self.keys.items(), outputs, strict=True):
            original = batch[key]
            if kind == "image":
                out[key] = value.clamp(0.0, 1.0).to(original.dtype)
            else:
                value = value if original.ndim == 4 else value[:, 0]
                out[key] = value.round().to(original.dtype) if not original.is_floating_point() else value
        return out
