"""High-resolution image folders for super-resolution: random training crops, whole val / test images.

Batches hold only the HR ``target``; the task makes the LR input from it, so the degradation lives in one
place (``operators.degradation.make_lr``) for training, validation and test alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.transforms import v2

from datamodules.base import ImageDataModule, ImageFileDataset
from datamodules.io import list_images, load_image
from framework.errors import UserError
from operators.degradation import mod_crop


def load_folders(folders: Sequence[str]) -> list[torch.Tensor]:
    """Every image of ``folders`` as uint8 RGB (3, H, W); gray images become RGB."""
    images = []
    for folder in folders:
        for path in list_images(folder):
            images.append(load_image(path, "RGB").mul(255).round().to(torch.uint8))
    return images


def transpose_hw(image: torch.Tensor) -> torch.Tensor:
    """Swap the last two axes (H ↔ W): the transpose that torchvision v2 has no transform for."""
    return image.transpose(-1, -2)


def random_crop_dihedral(crop_size: int) -> v2.Compose:
    """A random ``crop_size`` crop, then one of the 8 dihedral variants (BasicSR's ``augment``: horizontal
    flip, vertical flip, transpose, each with p = 0.5). Every draw is from torch's global generator, so a
    data set run under :func:`framework.rng.seeded_torch` gives the same crop for the same seed."""
    return v2.Compose(
        [
            v2.RandomCrop(crop_size),
            v2.RandomHorizontalFlip(p=0.5),
            v2.RandomVerticalFlip(p=0.5),
            v2.RandomApply([v2.Lambda(transpose_hw)], p=0.5),
        ]
    )


class RandomCropDataset(Dataset):
    """``length`` random ``crop_size`` crops per epoch, each flipped / transposed at random (8 dihedral
    variants, :func:`random_crop_dihedral`), from uint8 images."""

    def __init__(self, images: list[torch.Tensor], crop_size: int, length: int) -> None:
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < crop_size]
        if small:
            raise UserError(f"data.crop_size={crop_size} is larger than a training image of size {small[0]}")
        self.images, self.crop_size, self.length = images, crop_size, length
        self.transform = random_crop_dihedral(crop_size)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.images[int(torch.randint(len(self.images), ()))]
        crop = self.transform(image)
        return {"target": crop.float().div(255)}


class ListDataset(Dataset):
    """Whole images of different sizes (batch size 1), mod-cropped to the scale."""

    def __init__(self, images: list[torch.Tensor], scale: int) -> None:
        self.images = [mod_crop(image, scale) for image in images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"target": self.images[index].float().div(255)}


class SuperResolutionDataModule(ImageDataModule):
    """Train on random crops of ``train_dirs``, validate on ``val_dirs``, test on each of ``test_dirs``
    (name → folder, reported separately as ``test/<name>/psnr_y`` …).

    Args:
        scale: upscaling factor r; ``crop_size`` (HR pixels) must be a multiple of it.
        samples_per_epoch: random crops drawn per training epoch.
    """

    def __init__(
        self,
        train_dirs: Sequence[str],
        val_dirs: Sequence[str],
        test_dirs: dict[str, str],
        scale: int = 3,
        crop_size: int = 96,
        samples_per_epoch: int = 8000,
        batch_size: int = 32,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(batch_size, 1, num_workers, augmentation, predict_input)
        if scale not in (2, 3, 4):
            raise UserError(f"data.scale={scale} is not supported: choose 2, 3 or 4")
        if crop_size % scale:
            raise UserError(f"data.crop_size={crop_size} must be a multiple of data.scale={scale}")
        self.train_dirs, self.val_dirs, self.test_dirs = list(train_dirs), list(val_dirs), dict(test_dirs)
        self.scale, self.crop_size, self.samples_per_epoch = scale, crop_size, samples_per_epoch
        self.test_set_names = list(self.test_dirs)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            self.train_set = RandomCropDataset(
                load_folders(self.train_dirs), self.crop_size, self.samples_per_epoch
            )
            self.val_set = ListDataset(load_folders(self.val_dirs), self.scale)
        if stage in (None, "test") and self.test_set is None:
            self.test_set = [
                ListDataset(load_folders([folder]), self.scale) for folder in self.test_dirs.values()
            ]

    def test_dataloader(self) -> list:  # type: ignore[override]
        return [self._loader(dataset, shuffle=False, batch_size=1) for dataset in self.test_set]

    def predict_dataset(self, path: str) -> ImageFileDataset:
        """The user's images, upscaled as they are (they are the low-resolution input)."""
        return ImageFileDataset(path, mode="RGB", key="input")
