"""High-resolution image folders for super-resolution: random training crops, whole val / test images.

Batches hold only the HR ``target``; the task makes the LR input from it, so the degradation lives in one
place (``operators.degradation.make_lr``) for training, validation and test alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from datamodules.base import ImageDataModule, ImageFileDataset
from datamodules.io import list_images, load_image_uint8
from framework.errors import UserError
from operators.degradation import mod_crop

SR_SPLIT_FILE = Path(__file__).parent / "splits" / "sr_val_holdout.json"


def load_paths(paths: Sequence[Path]) -> list[torch.Tensor]:
    """The images at ``paths`` as uint8 RGB (3, H, W); gray images become RGB."""
    return [load_image_uint8(path, "RGB") for path in paths]


def load_folders(folders: Sequence[str]) -> list[torch.Tensor]:
    """Every image of ``folders`` as uint8 RGB (3, H, W); gray images become RGB."""
    return load_paths([path for folder in folders for path in list_images(folder)])


def read_holdout(path: str | Path) -> dict[str, list[str]]:
    """The committed validation hold-out: training folder name (e.g. ``"T91"``) → file names held out."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data.val_split_file='{path}' does not exist: restore datamodules/splits/ from git")
    data = json.loads(path.read_text())
    return {folder: list(names) for folder, names in data["holdout"].items()}


def make_holdout(
    folders: Sequence[str | Path], counts: dict[str, int], seed: int = 0
) -> dict[str, list[str]]:
    """``counts[name]`` file names of each training folder drawn with ``torch.randperm`` (seeded) over the
    sorted listing, sorted (how ``datamodules/splits/sr_val_holdout.json`` was made, once)."""
    generator = torch.Generator().manual_seed(seed)
    holdout = {}
    for folder in folders:
        names = [p.name for p in list_images(folder)]
        count = counts.get(Path(folder).name, 0)
        order = torch.randperm(len(names), generator=generator)[:count]
        holdout[Path(folder).name] = sorted(names[i] for i in order.tolist())
    return holdout


def split_training_folders(
    train_dirs: Sequence[str], holdout: dict[str, list[str]]
) -> tuple[list[Path], list[Path]]:
    """(training paths, held-out validation paths) of ``train_dirs``: a folder's files listed under its name
    in ``holdout`` validate, the others train."""
    train, val = [], []
    for folder in train_dirs:
        paths = list_images(folder)
        held = set(holdout.get(Path(folder).name, []))
        missing = held - {p.name for p in paths}
        if missing:
            raise UserError(
                f"data.val_split_file holds out {sorted(missing)[:3]} of '{folder}', which it does not have: "
                "restore the folder or the split file"
            )
        for path in paths:
            (val if path.name in held else train).append(path)
    return train, val


def random_crop_dihedral(image: torch.Tensor, crop_size: int) -> torch.Tensor:
    """A random ``crop_size`` × ``crop_size`` crop of ``image`` (…, H, W), then one of the 8 dihedral variants
    (BasicSR's ``augment``: horizontal flip, vertical flip, transpose, each with p = 0.5), as a view where it
    can be one. Every draw is from torch's global generator, so a data set run under
    :func:`framework.rng.seeded_torch` gives the same crop for the same seed. Plain indexing: 6× faster
    per item than the same as a torchvision v2 pipeline (24 vs 150 µs on 51 px crops of T91), which made the
    loader a tenth of ESPCN's training step."""
    height, width = image.shape[-2:]
    top = int(torch.randint(height - crop_size + 1, ()))
    left = int(torch.randint(width - crop_size + 1, ()))
    crop = image[..., top : top + crop_size, left : left + crop_size]
    hflip, vflip, transpose = (torch.rand(3) < 0.5).tolist()
    if hflip:
        crop = crop.flip(-1)
    if vflip:
        crop = crop.flip(-2)
    return crop.transpose(-1, -2) if transpose else crop


class RandomCropDataset(Dataset):
    """``length`` random ``crop_size`` crops per epoch, each flipped / transposed at random (8 dihedral
    variants, :func:`random_crop_dihedral`), from uint8 images."""

    def __init__(self, images: list[torch.Tensor], crop_size: int, length: int) -> None:
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < crop_size]
        if small:
            raise UserError(f"data.crop_size={crop_size} is larger than a training image of size {small[0]}")
        self.images, self.crop_size, self.length = images, crop_size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.images[int(torch.randint(len(self.images), ()))]
        crop = random_crop_dihedral(image, self.crop_size)
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
    """Train on random crops of ``train_dirs`` less a held-out part, validate on that held-out part (and any
    ``val_dirs``), test on each of ``test_dirs`` (name → folder, reported separately as
    ``test/<name>/psnr_y`` …). The test sets never validate: a validation folder that is a test folder is
    refused, so the best checkpoint is chosen on images the test never sees.

    Args:
        val_split_file: JSON whose ``holdout`` maps a training folder's name (``"T91"``, ``"BSD200"``) to the
            file names held out of training for validation (None: the committed
            ``datamodules/splits/sr_val_holdout.json``, 10 of T91's 91 and 20 of BSD200's 200, seed 0).
        val_dirs: extra whole folders to validate on (default none).
        scale: upscaling factor r; ``crop_size`` (HR pixels) must be a multiple of it.
        samples_per_epoch: random crops drawn per training epoch.
    """

    def __init__(
        self,
        train_dirs: Sequence[str],
        test_dirs: dict[str, str],
        val_dirs: Sequence[str] = (),
        val_split_file: str | None = None,
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
        tests = {Path(folder).resolve() for folder in self.test_dirs.values()}
        for folder in self.val_dirs:
            if Path(folder).resolve() in tests:
                raise UserError(
                    f"data.val_dirs has the test folder '{folder}': validate on images held out of training "
                    "(data.val_split_file), not on a test set"
                )
        self.val_split_file = Path(val_split_file) if val_split_file else SR_SPLIT_FILE
        self.scale, self.crop_size, self.samples_per_epoch = scale, crop_size, samples_per_epoch
        self.test_set_names = list(self.test_dirs)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            train, held_out = split_training_folders(self.train_dirs, read_holdout(self.val_split_file))
            val = held_out + [p for folder in self.val_dirs for p in list_images(folder)]
            if not val:
                raise UserError(
                    f"no validation images: {self.val_split_file} holds none out of data.train_dirs and "
                    "data.val_dirs is empty"
                )
            self.train_set = RandomCropDataset(load_paths(train), self.crop_size, self.samples_per_epoch)
            self.val_set = ListDataset(load_paths(val), self.scale)
            self.val_paths = val
        if stage in (None, "test") and self.test_set is None:
            self.test_set = [
                ListDataset(load_folders([folder]), self.scale) for folder in self.test_dirs.values()
            ]

    def test_dataloader(self) -> list:  # type: ignore[override]
        return [self._loader(dataset, shuffle=False, batch_size=1) for dataset in self.test_set]

    def predict_dataset(self, path: str) -> ImageFileDataset:
        """The user's images, upscaled as they are (they are the low-resolution input)."""
        return ImageFileDataset(path, mode="RGB", key="input")
