"""Content photos (and, for AdaIN, style paintings) for style transfer.

* **train**: random ``crop_size`` crops (random scale and aspect, then a flip) of the photos of
  ``content_dirs`` that the split file does not hold out; with ``train_styles`` each item also gets a random
  ``crop_size`` crop of one of those paintings, resized first so that its short side is ``style_train_size``
  (Huang & Belongie 2017, §6: both images' short side to 512, then 256-px crops).
* **val**: the split's ``val`` photos, short side resized to ``val_size`` and centre-cropped to a square.
* **test**: every photo of ``test_dirs`` (``style/contents``) and the first ``test_heldout`` of the split's
  ``test`` photos, long side resized to ``test_size`` (batch 1: the sizes differ).
* **predict**: the user's images at their own size and orientation.

Batches: ``{"content": (B, 3, H, W) in [0, 1], "name": [stem, …]}``, plus ``"style"`` (B, 3, h, w) in
training batches when ``train_styles`` is set. The style a method renders at val / test / predict time is the
run's ``style`` (the LightningModule holds it), not part of the data.

The split file (``datamodules/splits/style_transfer.json``, committed) lists paths relative to ``data_root``;
photos are read from disk as they are needed (about 1 900 photos, 1 GB as tensors).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from pydantic import NonNegativeInt, PositiveInt
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms import v2

from datamodules.base import ImageDataModule, ImageFileDataset
from datamodules.io import DataError, list_images, load_image

log = logging.getLogger(__name__)

SPLIT_FILE = Path(__file__).resolve().parent / "splits" / "style_transfer.json"
MIN_SIZE = 16  # pixels: the smallest photo side the style nets and the VGG loss take


def held_out(split_file: str | Path, data_root: str | Path) -> dict[str, list[Path]]:
    """``{"val": [...], "test": [...]}``: the photos ``split_file`` holds out of training, as paths."""
    path = Path(split_file)
    if not path.is_file():
        raise DataError(f"split file '{path}' does not exist: restore it from git or give data.split_file")
    data = json.loads(path.read_text())
    if set(data.get("val", [])) & set(data.get("test", [])):
        raise DataError(f"split file '{path}' lists a photo in both val and test: restore it from git")
    return {split: [Path(data_root) / name for name in data.get(split, [])] for split in ("val", "test")}


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) resized (antialiased bilinear) so that max(H, W) = ``size``, aspect ratio kept."""
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    new = (max(1, round(height * scale)), max(1, round(width * scale)))
    return v2.functional.resize(image, list(new), antialias=True)


class PhotoDataset(Dataset):
    """``{"content": transform(photo), "name": stem}`` for a list of files (read when asked for)."""

    def __init__(self, files: Sequence[Path], transform: Any, key: str = "content") -> None:
        self.files, self.transform, self.key = list(files), transform, key

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        return {self.key: self.transform(load_image(path, "RGB")), "name": path.stem}


class ContentStyleCrops(Dataset):
    """Random content crops, each with a random style crop when ``styles`` are given (AdaIN's training
    pairs): ``{"content", "name"(, "style")}``. An epoch is ``length`` items."""

    def __init__(
        self, photos: PhotoDataset, styles: list[torch.Tensor], crop_size: int, length: int | None
    ) -> None:
        self.photos, self.styles = photos, styles
        self.length = length or len(photos)
        self.style_crop = v2.Compose(
            [v2.RandomCrop(crop_size, pad_if_needed=True), v2.RandomHorizontalFlip()]
        )

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.photos[int(torch.randint(len(self.photos), ()))]
        if self.styles:
            style = self.styles[int(torch.randint(len(self.styles), ()))]
            item["style"] = self.style_crop(style)
        return item


class StyleTransferDataModule(ImageDataModule):
    """Content photos for style transfer (see the module docstring for the splits).

    Args:
        content_dirs: training photo folders (minus the split file's held-out photos).
        test_dirs: folders whose every photo is a test photo (``style/contents``).
        split_file: JSON with ``val`` / ``test`` lists of paths relative to ``data_root`` (null: the committed
            ``datamodules/splits/style_transfer.json``).
        crop_size: side of the square training crops.
        samples_per_epoch: training items per epoch (null: one per training photo).
        val_size: side of the square validation images.
        test_size: long side of the test images.
        test_heldout: how many of the split's held-out test photos join ``test_dirs``' photos.
        train_styles: painting files for AdaIN's content × style training pairs (null: content only).
        style_train_size: short side the training paintings are resized to before cropping.
    """

    dataset_label = "style/contents"

    def __init__(
        self,
        content_dirs: Sequence[str],
        test_dirs: Sequence[str],
        data_root: str,
        split_file: str | None = None,
        crop_size: PositiveInt = 256,
        samples_per_epoch: PositiveInt | None = None,
        val_size: PositiveInt = 256,
        test_size: PositiveInt = 512,
        test_heldout: NonNegativeInt = 0,
        train_styles: Sequence[str] | None = None,
        style_train_size: PositiveInt = 512,
        batch_size: PositiveInt = 4,
        eval_batch_size: PositiveInt | None = 8,
        num_workers: NonNegativeInt = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, augmentation, predict_input)
        if style_train_size < crop_size:
            raise DataError(f"data.style_train_size={style_train_size} must be >= data.crop_size={crop_size}")
        for name, size in (("crop_size", crop_size), ("val_size", val_size), ("test_size", test_size)):
            if size < MIN_SIZE:  # the nets downsample 4x and the VGG loss 4x more
                raise DataError(f"data.{name}={size} is a photo size in pixels: give at least {MIN_SIZE}")
        self.content_dirs, self.test_dirs = list(content_dirs), list(test_dirs)
        self.data_root, self.split_file = Path(data_root), Path(split_file or SPLIT_FILE)
        self.crop_size, self.samples_per_epoch = crop_size, samples_per_epoch
        self.val_size, self.test_size, self.test_heldout = val_size, test_size, test_heldout
        self.train_styles = [Path(p) for p in train_styles or []]
        self.style_train_size = style_train_size
        for path in self.train_styles:
            if not path.is_file():
                raise DataError(f"data.train_styles: '{path}' does not exist: give painting image files")

    def setup(self, stage: str | None = None) -> None:
        split = held_out(self.split_file, self.data_root)
        if stage in (None, "fit", "validate") and self.train_set is None:
            excluded = {p.resolve() for p in split["val"] + split["test"]}
            files = [p for d in self.content_dirs for p in list_images(d) if p.resolve() not in excluded]
            if not files:
                raise DataError(f"data.content_dirs={self.content_dirs} hold no training photos")
            crop = v2.Compose(
                [
                    v2.RandomResizedCrop(self.crop_size, scale=(0.25, 1.0), antialias=True),
                    v2.RandomHorizontalFlip(),
                ]
            )
            styles = [
                v2.functional.resize(load_image(p, "RGB"), self.style_train_size, antialias=True)
                for p in self.train_styles
            ]
            self.train_set = ContentStyleCrops(
                PhotoDataset(files, crop), styles, self.crop_size, self.samples_per_epoch
            )
            square = v2.Compose([v2.Resize(self.val_size, antialias=True), v2.CenterCrop(self.val_size)])
            self.val_set = PhotoDataset(split["val"], square)
            log.info("style transfer data: %d training photos, %d val", len(files), len(split["val"]))
        if stage in (None, "test") and self.test_set is None:
            files = [p for d in self.test_dirs for p in list_images(d)] + split["test"][: self.test_heldout]
            self.test_set = PhotoDataset(files, partial(resize_long_side, size=self.test_size))

    def test_dataloader(self) -> Any:
        return self._loader(self.test_set, shuffle=False, batch_size=1)

    def predict_dataset(self, path: str) -> ImageFileDataset:
        """The user's photos at their own size (the stylised image keeps it)."""
        return ImageFileDataset(path, mode="RGB", key="content")
