"""Phase retrieval (PR-DAD, Dekel & Gugel, ICFSP 2022): recover x from y = |F(pad(x))|.

The slide's loop: simulate the magnitude of a clean image, predict the image from it, and score the
prediction up to the 180° rotation that the magnitude cannot see.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_modules.base import ImagingModule, OptimizerFactory, SchedulerFactory
from metrics.phase_retrieval import PaperPSNR, rot180_invariant_metrics
from operators.fourier import FourierMagnitude, rot180


def align_rot180(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``pred`` or its 180° rotation, per sample, whichever is closer (MSE) to ``target``."""
    rotated = rot180(pred)
    keep = (pred - target).square().flatten(1).mean(1) <= (rotated - target).square().flatten(1).mean(1)
    return torch.where(keep[:, None, None, None], pred, rotated)


def log_magnitude(y: torch.Tensor) -> torch.Tensor:
    """|F| shown as an image: log(1 + y), centred (fftshift), scaled to [0, 1] per sample."""
    shown = torch.fft.fftshift(torch.log1p(y), dim=(-2, -1))
    return shown / shown.flatten(1).amax(1).clamp_min(1e-8)[:, None, None, None]


class PhaseRetrievalModule(ImagingModule):
    """``net(y) → x̂``; ``forward_model`` makes y from the batch's clean images (with noise, if configured);
    ``image_size`` is the side of those images; ``channels_last``: the net's weights in channels-last
    memory format, so its convolutions run in it
    (:meth:`~lightning_modules.base.ImagingModule.set_channels_last`)."""

    metric_names = ("ssim_paper", "ssim_dr2", "ssim", "mse", "mae", "psnr")

    def __init__(
        self,
        net: nn.Module,
        forward_model: FourierMagnitude,
        loss: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        task_name: str = "phase_retrieval",
        nan_policy: str = "stop",
        image_size: int = 32,
        channels_last: bool = False,
    ) -> None:
        super().__init__(net, loss, optimizer, scheduler, task_name, nan_policy)
        self.forward_model = forward_model
        self.image_size = image_size
        self.set_channels_last(channels_last)

    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        return {"target": torch.rand(batch_size, 1, self.image_size, self.image_size)}

    def inputs_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        target = batch["target"]
        return self.forward_model(target), target

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return rot180_invariant_metrics(pred, target)

    def dataset_metrics(self) -> dict[str, Any]:
        """``psnr_paper``: the published tables' PSNR, from the split's mean MSE (:class:`PaperPSNR`)."""
        return {"psnr_paper": PaperPSNR()}

    def visuals(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict[str, Any]:
        rows = {"magnitude (log)": log_magnitude(inputs)}
        if target is None:
            return {**rows, "reconstruction": pred}
        return {**rows, "reconstruction": align_rot180(pred, target), "ground truth": target}

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        aligned = pred if target is None else align_rot180(pred, target)
        images = {"": aligned}
        if target is not None:
            images["_vs_truth"] = torch.cat([target, aligned], dim=-1)
        return images
