"""MNIST, Fashion-MNIST, KMNIST and EMNIST as in-memory tensors, resized once to ``image_size``."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import NonNegativeInt, PositiveInt
from torch import nn

from datamodules.base import DictDataset, ImageDataModule, ImageFileDataset
from datamodules.sources import load_mnist_family
from framework.errors import UserError


def resize_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W) → uint8 (N, 1, size, size), bilinear (antialiased when shrinking)."""
    x = images.unsqueeze(1).float()
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


class MNISTFamilyDataModule(ImageDataModule):
    """Gray 28×28 digit / fashion / letter images, batches of ``{"target": (B, 1, n, n) in [0, 1]}``.

    Args:
        dataset: ``mnist`` | ``fashion_mnist`` | ``kmnist`` | ``emnist`` (balanced split).
        root: where torchvision keeps (or downloads) the files.
        image_size: side after resizing (PR-DAD protocol: 32; CPR / PRCGAN protocol: 28).
        pad: measurement padding per side that this data set's protocol uses (PR-DAD code:
            ``int(0.5 · add_pad · image_size)``); read by the task's forward model as ``${data.pad}``.
        val_size: images held out of the training set (fixed seed) for validation.
        test_size: evaluate on the first ``test_size`` test images (all when null).
        train_size: train on the first ``train_size`` remaining training images (all when null).
        local_copies: folders of the gzipped IDX files to read before trying to download.
        test_split: what the test step scores: ``"test"`` (the test images) or ``"val"`` (the validation
            images, e.g. to choose among finished variants on validation with the task's own test step).
    """

    def __init__(
        self,
        dataset: str = "fashion_mnist",
        root: str = "data",
        image_size: PositiveInt = 32,
        pad: NonNegativeInt = 4,
        val_size: NonNegativeInt = 5000,
        test_size: PositiveInt | None = None,
        train_size: PositiveInt | None = None,
        local_copies: list[str] | None = None,
        download: bool = True,
        split_seed: int = 0,
        test_split: str = "test",
        batch_size: int = 256,
        eval_batch_size: int | None = 1000,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, augmentation, predict_input)
        self.dataset, self.root, self.image_size, self.pad = dataset, Path(root), image_size, pad
        self.val_size, self.test_size, self.train_size = val_size, test_size, train_size
        self.local_copies, self.download, self.split_seed = local_copies, download, split_seed
        if test_split not in ("test", "val"):
            raise UserError(f"data.test_split={test_split} is not allowed: choose test or val")
        self.test_split = test_split

    def _split_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(validation, training) images: ``val_size`` held out of the training set by ``split_seed``."""
        images = self._load(train=True)
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
        val_index, train_index = order[: self.val_size], order[self.val_size :]
        train_index = train_index[: self.train_size] if self.train_size else train_index
        return images[val_index], images[train_index]

    def _load(self, train: bool) -> torch.Tensor:
        images = load_mnist_family(self.dataset, self.root, train, self.download, self.local_copies)
        return resize_images(images, self.image_size)

    def prepare_data(self) -> None:
        self._load(train=True), self._load(train=False)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            val, train = self._split_train()
            self.train_set = DictDataset(target=train)
            self.val_set = DictDataset(target=val)
        if stage in (None, "test") and self.test_set is None:
            images = self._split_train()[0] if self.test_split == "val" else self._load(train=False)
            self.test_set = DictDataset(target=images[: self.test_size] if self.test_size else images)

    def predict_dataset(self, path: str) -> ImageFileDataset:
        """The user's images as gray ``image_size`` squares, the ground truth of a simulated measurement."""
        size = self.image_size

        def to_square(image: torch.Tensor) -> torch.Tensor:
            return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)[0]

        return ImageFileDataset(path, mode="L", key="target", transform=to_square)
