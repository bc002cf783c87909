"""``stage=predict``: write each output image of ``predict_step`` as a PNG named after its input."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from datamodules.io import save_image

log = logging.getLogger(__name__)


class PredictionWriter(BasePredictionWriter):
    """``predict_step`` returns ``{"name": [stem, ...], "images": {suffix: (B, C, H, W)}}``; each image is
    written to ``<output_dir>/<stem><suffix>.png`` (``output_dir`` falls back to ``default_dir``)."""

    def __init__(self, output_dir: str | None = None, default_dir: str = "predictions") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir or default_dir)
        self.written = 0

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        for suffix, images in prediction["images"].items():
            for name, image in zip(prediction["name"], images, strict=True):
                save_image(image, self.output_dir / f"{name}{suffix}.png")
        self.written += len(prediction["name"])

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log.info("wrote %d predictions to %s", self.written, self.output_dir)
        print(f"predictions: {self.written} images in {self.output_dir}")
