"""Image grids (one row per kind: input / prediction / target) to every logger and to PNGs in the run dir."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid

from datamodules.io import save_image

log = logging.getLogger(__name__)


def image_grid(rows: dict[str, torch.Tensor], num_images: int, padding: int = 2) -> torch.Tensor:
    """Stack ``rows`` (name → (B, C, H, W) in [0, 1]) into one RGB grid, one row per name.

    Rows of other sizes are resized (nearest) to the first row's size so that columns line up.
    """
    first = next(iter(rows.values()))
    height, width = first.shape[-2:]
    tiles = []
    for images in rows.values():
        images = images[:num_images].detach().float().cpu().clamp(0, 1)
        if images.shape[-2:] != (height, width):
            images = F.interpolate(images, size=(height, width), mode="nearest")
        tiles.append(images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3])
    count = min(len(t) for t in tiles)
    return make_grid(torch.cat([t[:count] for t in tiles]), nrow=count, padding=padding, pad_value=1.0)


class ImageLogger(Callback):
    """Logs the grid of the first validation batch every ``every_n_epochs`` and of the first test batch.

    PNGs land in ``output_dir`` (``val_epoch007.png``, ``test.png``); W&B and TensorBoard get the same grid.
    """

    def __init__(self, output_dir: str, num_images: int = 16, every_n_epochs: int = 1) -> None:
        self.output_dir = Path(output_dir)
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self._rows: dict[str, torch.Tensor] | None = None

    def _capture(self, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
        if batch_idx == 0 and dataloader_idx == 0 and hasattr(pl_module, "visual_batch"):
            self._rows = pl_module.visual_batch(batch)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking and trainer.current_epoch % self.every_n_epochs == 0:
            self._capture(pl_module, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._capture(pl_module, batch, batch_idx, dataloader_idx)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._emit(trainer, "val", f"val_epoch{trainer.current_epoch:03d}")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._emit(trainer, "test", "test")

    def _emit(self, trainer: Trainer, split: str, file_stem: str) -> None:
        if self._rows is None or not trainer.is_global_zero:
            return
        rows, self._rows = self._rows, None
        grid = image_grid(rows, self.num_images)
        path = save_image(grid, self.output_dir / f"{file_stem}.png")
        caption = " / ".join(rows)  # top to bottom
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key=f"{split}/images", images=[grid], caption=[caption], step=trainer.global_step
                )
            elif isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"{split}/images", grid, trainer.global_step)
        log.info("%s images (%s): %s", split, caption, path)
