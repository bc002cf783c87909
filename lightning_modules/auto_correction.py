"""One-tap photo auto-correction: a global colour transform predicted from a thumbnail (image-adaptive 3D
LUTs, Zeng et al., TPAMI 2020; or Zero-DCE-style curves), trained on synthetic pairs, tested on those and on
real input / expert-retouched pairs; classical corrections (gray world, auto-levels, …) run the same test
loop with no checkpoint.

The loss is the paper's (Zeng et al., Eq. 9), ``L = MSE(ŷ, y) + λ_s (Σ_n TV(φ_n) + mean w²) + λ_m R_m``:
MSE because PSNR, the figure every table reports, is a function of it; the LUT regularisers only when the
net has them (``net.regularisation``). Metrics per image: PSNR, SSIM (RGB, data range 1) and the mean
CIEDE2000 ΔE, on 8-bit-rounded images (``metrics.color``).

``stage=predict`` corrects each photo at full resolution: a global net's transform is predicted from a
thumbnail and applied by Pillow to the 8-bit photo (:func:`operators.global_correction.correct_photo`), so
a 12-Mpx photo goes through nothing but the transform; a classical method (no ``global_transforms``) runs on
the whole image. It writes ``<name>.png`` (the corrected photo, full size) and ``<name>_before_after.png``
(input | output, long side ``preview_size`` each).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import NonNegativeFloat, PositiveInt
from torch import nn

from lightning_modules.base import ImagingModule, OptimizerFactory, SchedulerFactory
from metrics.color import color_metrics
from operators.global_correction import correct_photo, from_pil, is_global, to_pil
from operators.photo_degradation import RandomPhotoDegradation


class AutoCorrectionModule(ImagingModule):
    """``net(input) → corrected``, trained with pixel loss + the net's regularisers (``lambda_smooth``,
    ``lambda_monotonicity``: the 3D-LUT paper's λ_s, λ_m). ``loss_pixels``: the training loss is taken on
    that many pixels per image, drawn at random every step (null: all), for a net that takes them
    (``net(x, at=pixels)``: the transform is predicted from the whole ``x``, applied to the pixels only): a
    global transform maps each pixel alone, so this is an unbiased estimate of the whole image's loss at a
    fraction of the cost of the lookup and its gradient. ``preview_size`` is the long side of each half of
    the before | after picture ``stage=predict`` writes (null: full size); ``predict_threads``: the cores
    the 8-bit transform runs on."""

    metric_names = ("psnr", "ssim", "delta_e00")

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        lambda_smooth: NonNegativeFloat = 1e-4,
        lambda_monotonicity: NonNegativeFloat = 10.0,
        loss_pixels: PositiveInt | None = None,
        preview_size: PositiveInt | None = 1024,
        predict_threads: PositiveInt = 2,
        task_name: str = "auto_correction",
        nan_policy: str = "stop",
    ) -> None:
        super().__init__(net, loss, optimizer, scheduler, task_name, nan_policy)

    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        generator = torch.Generator().manual_seed(0)
        coarse = torch.rand(batch_size, 3, 8, 8, generator=generator)
        target = F.interpolate(coarse, size=(64, 64), mode="bilinear", align_corners=False)
        degraded = RandomPhotoDegradation()(target, generator)
        return {"input": degraded, "target": target, "name": [f"example{i}" for i in range(batch_size)]}

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: value.float() for name, value in color_metrics(pred, target).items()}

    def sample_pixels(
        self, inputs: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``loss_pixels`` random pixels of every image, the same positions in input and target, as
        (B, 3, P, 1); ``(None, target)`` when the loss takes every pixel."""
        count = self.hparams.loss_pixels
        takes_pixels = "at" in inspect.signature(self.net.forward).parameters
        if count is None or not takes_pixels or count >= inputs.shape[-2] * inputs.shape[-1]:
            return None, target
        index = torch.randperm(inputs.shape[-2] * inputs.shape[-1], device=inputs.device)[:count]
        return tuple(x.flatten(2)[..., index].unsqueeze(-1) for x in (inputs, target))  # type: ignore[return-value]

    def regularised(
        self, inputs: torch.Tensor, at: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The prediction (for ``at`` if given) and the net's regularisers (``{}`` for a net without)."""
        if not hasattr(self.net, "regularisation"):
            return (self(inputs) if at is None else self.net(inputs, at)), {}
        pred, weights = self.net.forward_with_weights(inputs, at)
        hp = self.hparams
        return pred, self.net.regularisation(weights, hp.lambda_smooth, hp.lambda_monotonicity)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        inputs, target = self.inputs_and_target(batch)
        at, target = self.sample_pixels(inputs, target)
        pred, terms = self.regularised(inputs, at)
        pixel = self.loss(pred, target)
        loss = pixel + terms["total"] if terms else pixel
        if not torch.isfinite(loss):
            return self._non_finite_loss(loss)
        size = len(inputs)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        self.log("train/pixel_loss", pixel, on_step=False, on_epoch=True, batch_size=size)
        for name in ("tv", "monotonicity", "weight_l2"):
            if name in terms:
                self.log(f"train/{name}", terms[name], on_step=False, on_epoch=True, batch_size=size)
        return loss

    def correct_full_resolution(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each photo of ``inputs`` (B, 3, H, W) corrected at full size, in 8-bit steps for a global net
        (the module docstring); clamped to [0, 1]."""
        if not is_global(self.net):
            return self(inputs).clamp(0.0, 1.0)
        threads = self.hparams.predict_threads
        return torch.stack([from_pil(correct_photo(self.net, to_pil(x), threads)) for x in inputs])

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        inputs = batch["input"]
        pred = self.correct_full_resolution(inputs).to(inputs.device)
        return {"name": batch["name"], "images": self.prediction_images(inputs, pred, None)}

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        size = self.hparams.preview_size
        before, after = inputs, pred
        if size is not None and max(inputs.shape[-2:]) > size:
            scale = size / max(inputs.shape[-2:])
            shape = [max(1, round(side * scale)) for side in inputs.shape[-2:]]
            before, after = (F.interpolate(x, size=shape, mode="area") for x in (inputs, pred))
        return {"": pred, "_before_after": torch.cat([before, after], dim=-1)}
