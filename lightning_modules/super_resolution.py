"""Single-image super-resolution (ESPCN, Shi et al., CVPR 2016): HR → LR on the fly, LR → SR by the net.

The slide's loop: degrade a high-resolution crop (bicubic ↓r, 8-bit, optional JPEG), upscale it with the
net, score it on the Y channel with the border cropped by r (BasicSR's convention).
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from framework.errors import UserError
from lightning_modules.base import ImagingModule, OptimizerFactory, SchedulerFactory
from metrics.super_resolution import sr_metrics
from models.espcn import BicubicUpsampler
from operators.degradation import make_lr
from operators.tiling import receptive_radius, tiled_apply

BICUBIC_RADIUS = 2  # LR pixels a bicubic upscaling looks at on each side (YChannelSR's Cb/Cr, the baseline)


class SuperResolutionModule(ImagingModule):
    """``net(LR) → SR`` at ``scale``; ``jpeg_quality`` = [low, high] draws a JPEG quality per training batch
    (de-blocking), ``jpeg_quality_eval`` is the fixed quality of validation / test inputs (null: none).

    ``stage=predict`` upscales an input larger than ``predict_tile`` LR pixels (either side; null: never)
    tile by tile (:func:`operators.tiling.tiled_apply`) with ``predict_overlap`` LR pixels of context (null:
    the net's receptive-field radius + 2), so memory is bounded by a tile and the output is the same as
    whole-image processing. ``channels_last``: the net in channels-last memory format
    (:meth:`~lightning_modules.base.ImagingModule.set_channels_last`)."""

    metric_names = ("psnr_y", "ssim_y", "psnr_rgb")

    def __init__(
        self,
        net: nn.Module,
        scale: int,
        loss: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        jpeg_quality: tuple[int, int] | None = None,
        jpeg_quality_eval: int | None = None,
        task_name: str = "super_resolution",
        nan_policy: str = "stop",
        predict_tile: int | None = 512,
        predict_overlap: int | None = None,
        channels_last: bool = False,
    ) -> None:
        if jpeg_quality is not None:  # a plain tuple: checkpoints keep plain values (not Hydra's ListConfig)
            low, high = (int(q) for q in jpeg_quality)
            if not 1 <= low <= high <= 100:
                raise UserError(
                    f"module.jpeg_quality={[low, high]} must be [low, high] with 1 <= low <= high <= 100"
                )
            jpeg_quality = (low, high)
        super().__init__(net, loss, optimizer, scheduler, task_name, nan_policy)
        if predict_tile is not None and predict_tile < 1:
            raise UserError(f"module.predict_tile={predict_tile} must be >= 1 (or null: never tile)")
        if predict_overlap is not None and predict_overlap < 0:
            raise UserError(f"module.predict_overlap={predict_overlap} must be >= 0 (or null: automatic)")
        self.scale = scale
        self.bicubic = BicubicUpsampler(scale)
        self.predict_tile, self.predict_overlap = predict_tile, predict_overlap
        self.set_channels_last(channels_last)

    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        return {"target": torch.rand(batch_size, 3, 12 * self.scale, 12 * self.scale)}

    def _jpeg_quality(self) -> int | None:
        if self.training and self.hparams.jpeg_quality is not None:
            low, high = self.hparams.jpeg_quality
            return random.randint(low, high)
        return self.hparams.jpeg_quality_eval

    def inputs_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if "input" in batch:  # the user's own low-resolution images (stage=predict)
            return batch["input"], batch.get("target")
        target = batch["target"]
        return make_lr(target, self.scale, self._jpeg_quality()), target

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return sr_metrics(pred, target, crop_border=self.scale)

    def visuals(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict[str, Any]:
        rows = {"bicubic": self.bicubic(inputs), "prediction": pred}
        return rows if target is None else {**rows, "ground truth": target}

    def upscale(self, inputs: torch.Tensor) -> torch.Tensor:
        """``self(inputs)``, tile by tile when the input is larger than ``predict_tile``."""
        tile = self.predict_tile
        if tile is None or max(inputs.shape[-2:]) <= tile:
            return self(inputs)
        overlap = self.predict_overlap
        if overlap is None:
            overlap = receptive_radius(self.net) + BICUBIC_RADIUS
        return tiled_apply(self, inputs, tile, overlap, self.scale)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        inputs, target = self.inputs_and_target(batch)
        pred = self.upscale(inputs)
        return {"name": batch["name"], "images": self.prediction_images(inputs, pred, target)}

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        return {"": pred, "_bicubic_vs_ours": torch.cat([self.bicubic(inputs), pred], dim=-1)}
