"""Single-image super-resolution (ESPCN, Shi et al., CVPR 2016): HR → LR on the fly, LR → SR by the net.

The slide's loop: degrade a high-resolution crop (bicubic ↓r, 8-bit, optional JPEG), upscale it with the
net, score it on the Y channel with the border cropped by r (BasicSR's convention).
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from lightning_modules.base import ImagingModule, OptimizerFactory, SchedulerFactory
from metrics.super_resolution import sr_metrics
from models.espcn import BicubicUpsampler
from operators.degradation import make_lr


class SuperResolutionModule(ImagingModule):
    """``net(LR) → SR`` at ``scale``; ``jpeg_quality`` = [low, high] draws a JPEG quality per training batch
    (de-blocking), ``jpeg_quality_eval`` is the fixed quality of validation / test inputs (null: none)."""

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
    ) -> None:
        super().__init__(net, loss, optimizer, scheduler, task_name, nan_policy)
        self.scale = scale
        self.bicubic = BicubicUpsampler(scale)

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

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        return {"": pred, "_bicubic_vs_ours": torch.cat([self.bicubic(inputs), pred], dim=-1)}
