"""What every DataModule shares: loaders, batch-level augmentation, and `stage=predict` on user images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch import nn
from torch.utils.data import DataLoader, Dataset

from datamodules.io import list_images, load_image
from framework.errors import UserError


class DictDataset(Dataset):
    """Items of equally long ``tensors`` as dicts, e.g. ``{"target": images[i]}``; uint8 → float in [0, 1]."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(t) for k, t in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            key: value[index].float().div(255) if value.dtype == torch.uint8 else value[index]
            for key, value in self.tensors.items()
        }


class ImageFileDataset(Dataset):
    """Images from a file or folder as ``{key: image, "name": stem}``, optionally transformed."""

    def __init__(
        self,
        path: str | Path,
        mode: str = "RGB",
        key: str = "input",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.files = list_images(path)
        self.mode, self.key, self.transform = mode, key, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = load_image(self.files[index], self.mode)
        if self.transform is not None:
            image = self.transform(image)
        return {self.key: image, "name": self.files[index].stem}


class ImageDataModule(LightningDataModule):
    """Base DataModule: subclasses build ``self.train_set`` / ``val_set`` / ``test_set`` in ``setup``.

    ``augmentation`` is an ``nn.Module`` applied to ``batch["target"]`` on the device, during training only
    (batch-level, e.g. kornia), so it costs no worker time. ``predict_input`` is a file or folder of the
    user's images for ``stage=predict``; :meth:`predict_dataset` says how a task reads them.
    """

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be a positive integer")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.augmentation = augmentation
        self.predict_input = predict_input
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    # -- loaders ---------------------------------------------------------------------------------------
    def _loader(self, dataset: Dataset | None, shuffle: bool, batch_size: int) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() did not build this split")
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle and len(dataset) > batch_size,  # type: ignore[arg-type]
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, batch_size=self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        if not self.predict_input:
            raise UserError(
                "stage=predict needs input=<image file or folder> (and optionally output=<folder>)"
            )
        return DataLoader(
            self.predict_dataset(self.predict_input), batch_size=1, num_workers=self.num_workers
        )

    def predict_dataset(self, path: str) -> Dataset:
        """The user's images for ``stage=predict``; subclasses resize / convert as their task needs."""
        return ImageFileDataset(path, mode="RGB", key="input")

    # -- augmentation ----------------------------------------------------------------------------------
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        if self.augmentation is not None and trainer is not None and trainer.training:
            batch["target"] = self.augmentation(batch["target"])
        return batch
