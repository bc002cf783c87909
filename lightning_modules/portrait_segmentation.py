"""Portrait segmentation (the lecture's "Portrait"): PSPNet gives one logit t per pixel, p̃ = σ(t) is the
person probability, trained with the NLL and / or the soft Jaccard ``NLL + w·(1 − J̃)``, scored by the IoU J.

The loop: training crops (``image_size``², augmented together with their masks) → logits → loss. Validation,
test and predict run the inference a user gets: the photo is resized so that its short side is
``inference_size``, segmented, and the logits are upsampled (bilinear) back to the photo's own size, so IoU
and boundary F are measured at the resolution of the ground-truth mask and predictions come out at the
input's size. ``stage=predict`` writes the mask, the cut-out (RGBA) and the portrait-mode photo.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn
from torchmetrics import Metric

from lightning_modules.base import ImagingModule, OptimizerFactory, SchedulerFactory
from metrics.segmentation import DatasetIoU, segmentation_metrics
from operators.portrait_mode import blur_background, cutout, overlay


class PortraitSegmentationModule(ImagingModule):
    """``net(RGB) → logits (B, 1, H, W)`` (PSPNet in training mode: ``(logits, aux_logits)``).

    Args:
        image_size: side of the square training crops (what :meth:`example_batch` makes).
        inference_size: short side at which validation / test / predict run the net (null: each image at its
            own size); the logits are upsampled back to the image's size.
        flip_average: evaluation and predict average the logits of the photo and of its mirror image
            (test-time augmentation; twice the inference cost).
        threshold: p̃ ≥ threshold is the person (the lecture's J at 0.5).
        blur_sigma: portrait mode's background blur, a fraction of the photo's long side.
        channels_last: the net's weights and inputs in channels-last memory format
            (:meth:`~lightning_modules.base.ImagingModule.set_channels_last`).
    """

    metric_names = ("iou", "boundary_f")

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        image_size: PositiveInt = 256,
        inference_size: PositiveInt | None = 256,
        flip_average: bool = False,
        threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5,
        blur_sigma: Annotated[float, Field(gt=0, le=0.2)] = 0.015,
        channels_last: bool = False,
        task_name: str = "portrait_segmentation",
        nan_policy: str = "stop",
    ) -> None:
        self.threshold = threshold  # before the base class builds dataset_metrics()
        super().__init__(net, loss, optimizer, scheduler, task_name, nan_policy)
        self.image_size, self.inference_size, self.blur_sigma = image_size, inference_size, blur_sigma
        self.flip_average = flip_average
        self.set_channels_last(channels_last)

    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        size = self.image_size
        return {
            "input": torch.rand(batch_size, 3, size, size),
            "target": torch.randint(0, 2, (batch_size, size, size)),  # a mask as ImageMaskFolder gives it
        }

    def inputs_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images and their {0, 1} masks as float (B, 1, H, W), the shape of the logits."""
        target = batch.get("target")
        if target is not None:
            target = (target.unsqueeze(1) if target.ndim == 3 else target).float()
        return batch["input"], target

    def ideal_prediction(self, target: torch.Tensor) -> torch.Tensor:
        """The net output that predicts ``target`` exactly: logits of ±30 (σ = 1 − 9e-14), on which every
        loss of this task is 0 (the losses take logits, so ``loss(target, target)`` is not)."""
        return (2.0 * target - 1.0) * 30.0

    def forward(self, inputs: torch.Tensor) -> Any:
        """Training: the net on the crops. Otherwise: logits at the inputs' own size, the net run at a short
        side of ``inference_size`` (bilinear, antialiased when shrinking), averaged with the mirror image's
        when ``flip_average``."""
        if self.training:
            return self.run_net(inputs)
        if self.flip_average:
            return (self._infer(inputs) + self._infer(inputs.flip(-1)).flip(-1)) / 2
        return self._infer(inputs)

    def _infer(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.inference_size is None:
            return self.run_net(inputs)
        height, width = inputs.shape[-2:]
        scale = self.inference_size / min(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        if size == (height, width):
            return self.run_net(inputs)
        resized = F.interpolate(inputs, size=size, mode="bilinear", antialias=scale < 1, align_corners=False)
        logits = self.run_net(resized)
        return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return segmentation_metrics(torch.sigmoid(pred), target, self.threshold)

    def dataset_metrics(self) -> dict[str, Metric]:
        return {"iou_dataset": DatasetIoU(self.threshold, from_logits=True)}

    def visuals(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict[str, Any]:
        """Image | ground-truth mask | prediction overlay (background dimmed; errors red = false person,
        blue = missed person)."""
        probs = torch.sigmoid(pred.float())
        rows = {"image": inputs}
        if target is not None:
            rows["mask"] = target
        rows["prediction"] = overlay(inputs, probs, target, self.threshold)
        return rows

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        """``<name>.png`` the 0/255 mask, ``_cutout.png`` the person with alpha (RGBA), ``_portrait.png`` the
        photo with its background blurred; all at the input's size."""
        alpha = torch.sigmoid(pred.float())
        return {
            "": (alpha >= self.threshold).float(),
            "_cutout": cutout(inputs, alpha),
            "_portrait": blur_background(inputs, alpha, self.blur_sigma),
        }
