"""Style transfer: render content photos in the style of a painting (Gatys, Ecker & Bethge, CVPR 2016).

One module for the four methods; ``net`` is one of
* a per-style network (Johnson et al., ECCV 2016; :mod:`models.transformer_net`), ``net(content)``, trained
  here on content crops with the lecture's ``α L_content + β L_style + γ L_tv`` against the run's style;
* an arbitrary-style network (AdaIN, Huang & Belongie, ICCV 2017; :mod:`models.adain`),
  ``net(content, style)``, trained here on content × painting crops with its own ``L_c + λ L_s``;
* an optimisation without parameters (Gatys; the lecture's fast mode; :mod:`algorithms.style_transfer`),
  ``net(content, style)``: nothing to fit, ``stage=test`` / ``predict`` run it directly.

The style rendered at val / test / predict time is the run's ``style`` (an image file, or the name of a
painting in ``style_dir``), loaded once with its long side at ``style_size`` px. Per-sample metrics use the
same frozen VGG, layers and weights for every method (the offline VGG19 to relu3_1): ``style_loss`` =
Σ_j w_j ‖G_j(ŷ) − G_j(y_s)‖²_F over relu1_1, relu2_1, relu3_1 (w_j = 1 / (J C_j²)) and ``content_loss`` =
MSE(φ_relu3_1(ŷ), φ_relu3_1(y_c)).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import PositiveInt
from torch import nn

from datamodules.io import list_images, load_image
from datamodules.style_transfer import resize_long_side
from framework.errors import UserError
from lightning_modules.base import ImagingModule, OptimizerFactory, SchedulerFactory
from losses.perceptual import DEFAULT_VGG_WEIGHTS
from losses.style import OFFLINE_CONTENT_LAYERS, OFFLINE_STYLE_LAYERS, StyleTransferLoss


def resolve_style(style: str, style_dir: str | None) -> Path:
    """``style`` as an image file: a path, or the stem of a painting in ``style_dir`` (``starry_night``)."""
    path = Path(style).expanduser()
    if path.is_file():
        return path
    paintings = {p.stem: p for p in list_images(style_dir)} if style_dir and Path(style_dir).is_dir() else {}
    if style in paintings:
        return paintings[style]
    names = ", ".join(sorted(paintings)) or f"none: {style_dir} has no images"
    raise UserError(f"style={style} is neither an image file nor a painting of style_dir; paintings: {names}")


class StyleTransferModule(ImagingModule):
    """Args: ``net`` (see the module docstring), ``style`` and ``style_dir`` (the run's style),
    ``style_size`` (its long side in px), ``loss`` (the training objective of a per-style net; its style is
    fixed to the run's), ``metric_vgg_weights`` (the metrics' VGG), ``channels_last`` (run the net on
    channels-last tensors, a CPU-speed lever with bf16 autocast)."""

    metric_names = ("style_loss", "content_loss")

    def __init__(
        self,
        net: nn.Module,
        style: str,
        style_dir: str | None = None,
        style_size: PositiveInt = 512,
        loss: StyleTransferLoss | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        metric_vgg_weights: str | Path = DEFAULT_VGG_WEIGHTS,
        channels_last: bool = False,
        task_name: str = "style_transfer",
        nan_policy: str = "stop",
    ) -> None:
        super().__init__(net, loss, optimizer, scheduler, task_name, nan_policy)
        self.style_path = resolve_style(style, style_dir)
        style_image = resize_long_side(load_image(self.style_path, "RGB"), style_size)[None]
        self.register_buffer("style_image", style_image, persistent=False)  # style= of the run, not the ckpt
        self.takes_style = "style" in inspect.signature(net.forward).parameters
        self.measure = StyleTransferLoss(
            1.0, 1.0, 0.0, OFFLINE_STYLE_LAYERS, OFFLINE_CONTENT_LAYERS, weights=metric_vgg_weights
        )
        self.measure.set_style(style_image)
        if loss is not None:
            loss.set_style(style_image)
        self.set_channels_last(channels_last)
        self._last_prediction: tuple[torch.Tensor, torch.Tensor] | None = None

    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        batch = {"content": torch.rand(batch_size, 3, 32, 32), "name": [f"x{i}" for i in range(batch_size)]}
        if hasattr(self.net, "training_losses"):  # AdaIN trains on content × style pairs
            batch["style"] = torch.rand(batch_size, 3, 32, 32)
        return batch

    def inputs_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return batch["content"], batch["content"]  # the content is the content loss's reference

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        pred = self.run_net(content, self.style_image) if self.takes_style else self.run_net(content)
        self._last_prediction = (content, pred)  # the image callback shows it without running Gatys again
        return pred

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        content = batch["content"]
        if hasattr(self.net, "training_losses"):  # AdaIN §6: L_c + λ L_s in the encoder's feature space
            if "style" not in batch:
                raise UserError(
                    "AdaIN trains on content × style pairs: give data.train_styles (data=style_adain)"
                )
            terms = self.net.training_losses(content, batch["style"])
            loss, parts = terms["total"], {"content": terms["content"], "style": terms["style"]}
        else:  # Johnson et al.: α L_content + β L_style + γ L_tv against the run's (fixed) style
            loss = self.loss(self.run_net(content), content)
            parts = self.loss.last_parts
        if not torch.isfinite(loss):
            return self._non_finite_loss(loss)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(content))
        for name, value in parts.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=len(content))
        return loss

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = self.measure.per_sample(pred, target)
        return {"style_loss": parts["style"], "content_loss": parts["content"]}

    @torch.no_grad()
    def visual_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        content, _ = self.inputs_and_target(batch)
        last = self._last_prediction
        pred = last[1] if last is not None and last[0] is content else self(content)
        return self.visuals(content, pred, content)

    def visuals(self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None) -> dict:
        style = self.style_image.expand(len(inputs), -1, -1, -1)
        return {"content": inputs, "style": style, "stylised": pred}

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        """The stylised image at the input's size, and the grid content | style | result."""
        height = inputs.shape[-2]
        style = self.style_image
        width = max(1, round(style.shape[-1] * height / style.shape[-2]))
        style = F.interpolate(
            style, size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )
        grid = torch.cat([inputs, style.expand(len(inputs), -1, -1, -1), pred.float()], dim=-1)
        return {"": pred, "_grid": grid.clamp(0, 1)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["style_transfer"] = {"style": self.style_path.name, "per_style": not self.takes_style}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint.get("style_transfer") or {}
        if saved.get("per_style") and saved["style"] != self.style_path.name:
            raise UserError(
                f"this checkpoint's network renders one style, {saved['style']}, not "
                f"style={self.style_path.name}: pass style={Path(saved['style']).stem} (or use model=adain)"
            )
