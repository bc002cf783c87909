"""Auto-correction data: synthetic pairs made on the fly from good photos, and real input / retouched pairs.

Synthetic pairs: the target is a good photo, the input is the photo under a random global degradation
(:class:`~operators.photo_degradation.RandomPhotoDegradation`: exposure, white-balance cast, gamma, contrast,
saturation; its ranges come from the config). Every photo of ``photo_dirs`` belongs to one split, chosen by a
hash of its last three path parts (``eg1800/images/00012.jpg``), so the split of a photo never depends on
which other folders are listed, nor on the machine.

* train: a random resized crop (``min_scale``–100 % of the area, aspect 3:4–4:3) to ``crop_size²``, a random
  horizontal flip, and a fresh degradation, all drawn under the item's own seed (the resumable loader of
  :class:`~datamodules.base.ImageDataModule` gives every item one), so a resumed fit sees the same items.
  The loader draws the degradation's parameters; the DataModule applies them to the batch on the device
  (:meth:`AutoCorrectionDataModule.device_batch`, as Real-ESRGAN synthesises its degradations), so the
  loader's work per photo is a crop (a GPU is not starved by it) and the pixels are the same as per item;
* val / test: the photo resized (short side ``eval_size``) and centre-cropped to ``eval_size²``, degraded
  under a seed made from ``seed`` and the photo's path: the same pairs in every run and every DataModule.

Both round the crop to 8 bit (the photo it stands for; the target), so the degradation runs as per-level
tables (:func:`~operators.photo_degradation.degrade_levels`, exact for 8-bit input).

Real pairs: ``test_pairs`` (name → ``{"images": dir, "targets": dir}``, e.g. the FiveK examples under
``autocorrect/``, or the full MIT-Adobe FiveK by path) are named test sets at their own resolution (batch 1),
reported as ``test/<name>/<metric>`` beside ``test/synthetic/<metric>``. They are never trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import torch
from PIL import Image
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from datamodules.base import ImageDataModule, ImageFileDataset
from datamodules.folders import PairedImageFolder
from datamodules.io import (
    CacheMB,
    DataError,
    DecodedCache,
    check_image_size,
    list_images,
    load_image,
    load_image_uint8,
    read_info,
)
from framework.errors import UserError
from operators.photo_degradation import PhotoDegradationParams, RandomPhotoDegradation

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


def photo_key(path: Path) -> str:
    """What identifies a photo for its split and its test seed: its last three path parts."""
    return "/".join(path.parts[-3:])


def _unit_hash(text: str) -> float:
    """A number in [0, 1) from ``text``, the same on every machine and Python run."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / 16**12


def split_of(path: Path, val_fraction: float, test_fraction: float) -> str:
    """``"test"`` for a ``test_fraction`` of the photos, ``"val"`` for the next ``val_fraction``, else
    ``"train"``, by a hash of :func:`photo_key`."""
    u = _unit_hash(photo_key(path))
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def item_seed(seed: int, path: Path) -> int:
    """The degradation seed of a validation / test photo."""
    return int(_unit_hash(f"{seed}:{photo_key(path)}") * 2**62)


class SyntheticPairs(Dataset):
    """Good photos → ``{"input": degraded photo, "target": photo, "name": stem}``, (3, S, S) floats; training
    items are ``{"target": the 8-bit crop, "degradation": its parameters (7,), "name"}``, made into that pair
    on the device by :func:`synthesise`.

    Args:
        files: the good photos.
        degradation: draws and applies the degradation (its ranges, clipping and contrast pivot).
        size: side of the square items.
        train: random resized crop + flip + a degradation from torch's global generator (seeded per item by
            the loader), else resize + centre crop + the degradation seeded by :func:`item_seed`.
        seed: the data seed of the val / test degradations.
        min_scale: the smallest crop area, as a fraction of the photo, in training.
        cache: keeps the decoded photos (training) or the val / test crops, so later epochs skip decoding.
    """

    def __init__(
        self,
        files: Sequence[Path],
        degradation: RandomPhotoDegradation,
        size: int,
        train: bool,
        seed: int = 0,
        min_scale: float = 0.25,
        cache: DecodedCache | None = None,
    ) -> None:
        self.files, self.degradation, self.size = list(files), degradation, size
        self.train, self.seed, self.cache = train, seed, cache
        self.crop = v2.RandomResizedCrop(size, scale=(min_scale, 1.0), ratio=(3 / 4, 4 / 3), antialias=True)

    def __len__(self) -> int:
        return len(self.files)

    def degradation_params(self, index: int) -> PhotoDegradationParams:
        """The degradation of item ``index``: fixed by its seed for val / test, a fresh draw from torch's
        global generator for training."""
        generator = (
            None if self.train else torch.Generator().manual_seed(item_seed(self.seed, self.files[index]))
        )
        return self.degradation.sample_params(1, generator)

    def photo_levels(self, index: int) -> torch.Tensor:
        """The 8-bit photo an item starts from: the whole photo (training: cropped later, in uint8, cheaper
        than in float on one thread), or the val / test crop (resized in float, then rounded to the 8-bit
        image it stands for)."""
        path = self.files[index]
        if self.train:
            return load_image_uint8(path, "RGB")
        photo = load_image(path, "RGB")
        photo = TF.center_crop(TF.resize(photo, self.size, antialias=True), [self.size, self.size])
        return photo.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.files[index]
        if self.cache is None:
            levels = self.photo_levels(index)
        else:
            key = (str(path), None if self.train else self.size)
            levels = self.cache.get(key, lambda: self.photo_levels(index))
        if self.train:
            levels = self.crop(levels)
            if torch.rand(()) < 0.5:
                levels = levels.flip(-1)
            levels = levels.contiguous()
        params = self.degradation_params(index)
        if self.train:  # degraded on the device, as a batch
            return {"target": levels, "degradation": params.as_tensor()[0], "name": path.stem}
        pair = synthesise({"target": levels[None], "degradation": params.as_tensor()}, self.degradation)
        return {"input": pair["input"][0], "target": pair["target"][0], "name": path.stem}


def synthesise(batch: dict[str, Any], degradation: RandomPhotoDegradation) -> dict[str, Any]:
    """A batch of 8-bit photos ``target`` (B, 3, S, S) uint8 and their ``degradation`` parameters (B, 7)
    → the training pairs ``input`` (the degraded photos) / ``target`` (the photos), floats in [0, 1]; the
    degradation runs as per-level tables (exact for 8-bit photos)."""
    levels, packed = batch["target"], batch["degradation"]
    rest = {key: value for key, value in batch.items() if key not in ("target", "degradation")}
    degraded = degradation.apply(levels, PhotoDegradationParams.from_tensor(packed))
    return {**rest, "input": degraded, "target": levels.float().div_(255.0)}


class NotedPhotos(ImageFileDataset):
    """The user's photos for ``stage=predict``, at full resolution (EXIF orientation applied by the loader);
    a photo with an embedded ICC profile is reported once: its pixels are taken as sRGB."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, mode="RGB", key="input")
        profiled = [f for f in self.files if Image.open(f).info.get("icc_profile")]
        if profiled:
            log.warning(
                "%d of %d photos embed an ICC profile (first: '%s'): their pixels are taken as sRGB and the "
                "outputs carry no profile; convert them to sRGB first for exact colours",
                len(profiled),
                len(self.files),
                profiled[0],
            )


class AutoCorrectionDataModule(ImageDataModule):
    """Synthetic pairs from ``photo_dirs`` (train / val / test by photo) + real pairs as named test sets.

    Args:
        photo_dirs: folders of good photos (the targets of the synthetic pairs).
        degradation: the random degradation of the inputs (``RandomPhotoDegradation``).
        test_pairs: name → ``{"images": input dir, "targets": retouched dir}``, tested at full size.
        val_fraction / test_fraction: the share of the photos held out for validation / test.
        crop_size: side of the training crops; eval_size: side of the val / test items.
        min_scale: smallest training crop, as a fraction of the photo's area.
        seed: seed of the val / test degradations (change it for another fixed test split).
        train_size / val_size / test_size: use only the first that many photos of a split (all when None).
        batch_size / eval_batch_size: training / synthetic val-test batches (real pairs: batch 1).
        cache_mb: memory for the decoded training photos and the val crops (:class:`DecodedCache`), so
            only the first epoch decodes them (all 1 743 training photos of the default folders: 705 MB);
            0 decodes every time. The test split is read once and not kept.
    """

    def __init__(
        self,
        photo_dirs: Sequence[str],
        degradation: RandomPhotoDegradation,
        test_pairs: Mapping[str, Mapping[str, str]] | None = None,
        val_fraction: Fraction = 0.05,
        test_fraction: Fraction = 0.05,
        crop_size: PositiveInt = 256,
        eval_size: PositiveInt = 256,
        min_scale: Annotated[float, Field(gt=0.0, le=1.0)] = 0.25,
        seed: int = 0,
        train_size: PositiveInt | None = None,
        val_size: PositiveInt | None = None,
        test_size: PositiveInt | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        cache_mb: CacheMB = 1024.0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, augmentation, predict_input)
        if not photo_dirs:
            raise UserError("data.photo_dirs is empty: give at least one folder of good photos")
        if val_fraction + test_fraction >= 1.0:
            raise UserError(
                f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no "
                "training photos: keep their sum below 1"
            )
        self.photo_dirs = [str(d) for d in photo_dirs]
        self.degradation = degradation
        self.pair_specs = {name: dict(spec) for name, spec in (test_pairs or {}).items()}
        for name, spec in self.pair_specs.items():
            if "images" not in spec or "targets" not in spec:
                raise UserError(f"data.test_pairs.{name} needs 'images' and 'targets' folders, got {spec}")
        self.fractions = (val_fraction, test_fraction)
        self.crop_size, self.eval_size, self.min_scale, self.seed = crop_size, eval_size, min_scale, seed
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.test_set_names = ["synthetic", *self.pair_specs]
        folders = ", ".join("/".join(Path(d).parts[-2:]) for d in self.photo_dirs)
        self.dataset_label = f"synthetic degradations of {folders}"
        self._files: dict[str, list[Path]] | None = None
        self.cache = DecodedCache(cache_mb) if cache_mb > 0 else None

    def split_files(self) -> dict[str, list[Path]]:
        """The photos of each split (sorted by path; every header checked once)."""
        if self._files is None:
            files: dict[str, list[Path]] = {split: [] for split in SPLITS}
            for folder in self.photo_dirs:
                for path in list_images(folder):
                    check_image_size(read_info(path))
                    files[split_of(path, *self.fractions)].append(path)
            for split in SPLITS:
                if not files[split] and (split != "val" or self.fractions[0] > 0):
                    raise DataError(
                        f"no {split} photos in data.photo_dirs ({sum(map(len, files.values()))} photos): add "
                        f"photos or raise data.{split}_fraction"
                    )
            self._files = {split: paths[: self.sizes[split]] for split, paths in files.items()}
        return self._files

    def _synthetic(self, split: str) -> SyntheticPairs:
        size = self.crop_size if split == "train" else self.eval_size
        files = self.split_files()[split]
        cache = self.cache if split != "test" else None  # the test split is read once
        train = split == "train"
        return SyntheticPairs(files, self.degradation, size, train, self.seed, self.min_scale, cache)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            self.train_set, self.val_set = self._synthetic("train"), self._synthetic("val")
        if stage in (None, "test") and self.test_set is None:
            pairs: list[Dataset] = []
            for spec in self.pair_specs.values():
                folder = PairedImageFolder(spec["images"], spec["targets"])
                size = self.sizes["test"]
                pairs.append(folder if size is None else Subset(folder, range(min(size, len(folder)))))
            self.test_set = [self._synthetic("test"), *pairs]

    def test_dataloader(self) -> list[DataLoader]:
        synthetic, *pairs = self.test_set  # type: ignore[misc]
        return [
            self._loader(synthetic, shuffle=False, batch_size=self.eval_batch_size),
            *(self._loader(dataset, shuffle=False, batch_size=1) for dataset in pairs),
        ]

    def predict_dataset(self, path: str) -> Dataset:
        return NotedPhotos(path)

    def device_batch(self, batch: Any, training: bool) -> Any:
        """Training batches arrive as photos + degradation parameters: :func:`synthesise` them here."""
        if isinstance(batch, dict) and "degradation" in batch:
            batch = synthesise(batch, self.degradation)
        return super().device_batch(batch, training)
