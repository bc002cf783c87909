"""High-resolution image folders for super-resolution: random training crops, whole val / test images.

Batches hold only the HR ``target``; the task makes the LR input from it, so the degradation lives in one
place (``operators.degradation.make_lr``) for training, validation and test alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from datamodules.base import ImageDataModule, ImageFileDataset
from datamodules.io import list_images, load_image_uint8
from framework.errors import UserError
from framework.rng import uniforms_from_seeds
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


def random_dihedral_crops(images: Sequence[np.ndarray], crop_size: int, uniforms: np.ndarray) -> torch.Tensor:
    """(B, C, S, S) crops of ``images`` (each (C, H, W)), one per row of ``uniforms`` (B, 6) in [0, 1): the
    image, the top and left corner, then a horizontal flip, a vertical flip and a transpose each when its
    number is < 0.5, which draws the 8 dihedral variants alike (BasicSR's ``augment``). Every crop, flip and
    transpose is a numpy view (negative strides), so the batch is one copy: ``np.stack``."""
    crops = []
    picks = (uniforms[:, 0] * len(images)).astype(np.int64).tolist()
    for pick, (u_top, u_left, hflip, vflip, transpose) in zip(
        picks, np.column_stack([uniforms[:, 1:3], uniforms[:, 3:6] < 0.5]).tolist(), strict=True
    ):
        image = images[pick]
        top = int(u_top * (image.shape[-2] - crop_size + 1))
        left = int(u_left * (image.shape[-1] - crop_size + 1))
        crop = image[..., top : top + crop_size, left : left + crop_size]
        if hflip:
            crop = crop[..., ::-1]
        if vflip:
            crop = crop[..., ::-1, :]
        crops.append(crop.swapaxes(-1, -2) if transpose else crop)
    return torch.from_numpy(np.stack(crops))


class RandomCropDataset(Dataset):
    """``length`` random ``crop_size`` crops per epoch, each flipped / transposed at random (8 dihedral
    variants, :func:`random_dihedral_crops`), from uint8 images.

    An item is a function of its seed only: :meth:`seeded_items` draws a batch of them at once from their
    seeds (:func:`framework.rng.uniforms_from_seeds`), which is how the training loader reads it
    (:class:`datamodules.base.SeededItems`): 0.7 ms per batch of 32 crops of 51 px on one core, against
    1.8 ms item by item under a reseeded torch generator (a seventh of ESPCN's training step). ``dataset[i]``
    draws its seed from torch's global generator (e.g. under :func:`framework.rng.seeded_torch`)."""

    draws = 6  # uniform numbers per crop: image, top, left, three flips

    def __init__(self, images: list[torch.Tensor], crop_size: int, length: int) -> None:
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < crop_size]
        if small:
            raise UserError(f"data.crop_size={crop_size} is larger than a training image of size {small[0]}")
        self.images = [np.ascontiguousarray(image.numpy()) for image in images]  # flips as views: numpy
        self.crop_size, self.length = crop_size, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.seeded_items([(index, int(torch.randint(2**62, ())))])[0]

    def seeded_items(self, keys: Sequence[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        """The items of ``(index, seed)`` keys; the seed alone decides the crop."""
        uniforms = uniforms_from_seeds([seed for _, seed in keys], self.draws)
        batch = random_dihedral_crops(self.images, self.crop_size, uniforms).float().div_(255)
        return [{"target": crop} for crop in batch.unbind(0)]


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
