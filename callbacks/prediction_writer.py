"""``stage=predict``: write each output image of ``predict_step`` as a PNG named after its input.

The PNG holds the pixels as the loader returned them: upright (a phone photo's EXIF orientation is applied
when it is read, ``datamodules.io``), without an orientation tag that would turn them a second time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from datamodules.io import save_image
from framework.errors import UserError

log = logging.getLogger(__name__)


class PredictionWriter(BasePredictionWriter):
    """``predict_step`` returns ``{"name": [stem, ...], "images": {suffix: (B, C, H, W)}}``; each image is
    written to ``<output_dir>/<stem><suffix>.png`` (``output_dir`` falls back to ``default_dir``). Two inputs
    with one stem (``a.jpg``, ``a.png``) would write one file: refused, naming the stem. ``compress_level``:
    PNG's zlib level (1: ~4× faster to encode than Pillow's default 6, files ~5 % larger; both lossless).
    """

    def __init__(
        self, output_dir: str | None = None, default_dir: str = "predictions", compress_level: int = 1
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir or default_dir)
        self.compress_level = compress_level
        self.written = 0
        self.names: set[str] = set()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.written, self.names = 0, set()

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
        for name in prediction["name"]:
            if name in self.names:
                raise UserError(
                    f"two inputs have the name '{name}' (e.g. {name}.jpg and {name}.png): both would be "
                    f"written to '{self.output_dir / name}.png'; rename one"
                )
            self.names.add(name)
        for suffix, images in prediction["images"].items():
            for name, image in zip(prediction["name"], images, strict=True):
                save_image(image, self.output_dir / f"{name}{suffix}.png", self.compress_level)
        self.written += len(prediction["name"])

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log.info("wrote %d predictions to %s", self.written, self.output_dir)
        print(f"predictions: {self.written} images in {self.output_dir}")
