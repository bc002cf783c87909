"""DataModules of paired folders: images + label masks (segmentation) and input + target photos
(restoration, auto-correction, real JPEG inputs for de-blocking).

Each split is a list of folder pairs (``FolderSpec`` dicts), so several sources can be pooled, and the test
split may instead be a dict ``name → spec`` of named test sets (each reported on its own, as
``test/<name>/<metric>``). A spec can keep only the stems its ``split`` lists in a committed ``split_file``
(JSON with ``train`` / ``val`` / ``test`` lists of stems, e.g. ``datamodules/splits/eg1800_faces.json``), so a
folder with no split of its own is divided once, reproducibly, and the test images never move.

``train_transform`` / ``eval_transform`` are ``torchvision.transforms.v2`` transforms of the item dict
(``{"input": Image, "target": Mask | Image, "name": stem}``), so a random crop or flip moves an image and its
mask together and masks are resized nearest-neighbour; batch-level augmentation (kornia, on the device) is
the DataModule's ``augmentation``. Items of different sizes need a transform that makes them one size, or a
batch size of 1. Every pair is checked when the data set is built (:mod:`datamodules.folders`): a missing
partner, a size mismatch or a colour mask is one line naming the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from datamodules.base import ImageDataModule
from datamodules.folders import ImageMaskFolder, PairedImageFolder
from datamodules.io import CacheMB, DataError, DecodedCache

# {"images": dir, "masks" | "targets": dir, "split_file"?: json, "split"?: name, + the folder class's options}
FolderSpec = Mapping[str, Any]
Transform = Callable[[dict[str, Any]], dict[str, Any]]
SPLITS = ("train", "val", "test")


def split_stems(split_file: str | Path, split: str) -> list[str]:
    """The stems ``split`` lists in ``split_file``; the file's splits must not share a stem."""
    path = Path(split_file)
    if not path.is_file():
        raise DataError(f"split file '{path}' does not exist: restore it from git or give another split_file")
    data = json.loads(path.read_text())
    if split not in data:
        raise DataError(
            f"split file '{path}' has no split '{split}': it has {', '.join(k for k in SPLITS if k in data)}"
        )
    seen: set[str] = set()
    for name in SPLITS:
        if seen & set(data.get(name, [])):
            raise DataError(f"split file '{path}' lists a stem in two splits: restore it from git")
        seen |= set(data.get(name, []))
    return list(data[split])


def first(dataset: Dataset, size: int | None) -> Dataset:
    """The first ``size`` items of ``dataset`` (all when None)."""
    return dataset if size is None else Subset(dataset, range(min(size, len(dataset))))  # type: ignore[arg-type]


class FolderPairDataModule(ImageDataModule):
    """Paired folders per split; subclasses say how one spec becomes a data set (:meth:`folder`).

    Args:
        train / val: folder specs pooled into the split.
        test: folder specs pooled into one test set, or ``name → spec`` for named test sets.
        train_transform / eval_transform: v2 transforms of the item dict (training / val, test, predict).
        train_size / val_size / test_size: use the first that many pairs of a split (all when None).
        cache_mb: memory for the decoded training and validation files (:class:`DecodedCache`: 8-bit, so
            EG1800's 1 241 pairs take 590 MB), so only the first epoch decodes them; 0 decodes every time.
            The test sets are read once and not kept.
    """

    partner = "targets"  # the spec key of the second folder

    def __init__(
        self,
        train: Sequence[FolderSpec],
        val: Sequence[FolderSpec],
        test: Sequence[FolderSpec] | Mapping[str, FolderSpec],
        train_transform: Transform | None = None,
        eval_transform: Transform | None = None,
        train_size: int | None = None,
        val_size: int | None = None,
        test_size: int | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
        cache_mb: CacheMB = 1024.0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, augmentation, predict_input)
        self.cache = DecodedCache(cache_mb) if cache_mb > 0 else None
        self.specs = {"train": list(train), "val": list(val)}
        self.test_specs = dict(test) if isinstance(test, Mapping) else {"": list(test)}
        self.test_set_names = [name for name in self.test_specs if name] or None
        self.train_transform, self.eval_transform = train_transform, eval_transform
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}

    def folder(self, spec: FolderSpec, transform: Transform | None, cache: DecodedCache | None) -> Dataset:
        raise NotImplementedError

    def _pool(
        self,
        specs: FolderSpec | Sequence[FolderSpec],
        transform: Transform | None,
        cache: DecodedCache | None = None,
    ) -> Dataset:
        specs = [specs] if isinstance(specs, Mapping) else list(specs)
        if not specs:
            raise DataError(f"{type(self).__name__}: a split has no folders: give at least one")
        parts = []
        for spec in specs:
            if "images" not in spec or self.partner not in spec:
                raise DataError(f"folder spec {dict(spec)} needs 'images' and '{self.partner}' folders")
            dataset = self.folder(spec, transform, cache)
            if spec.get("split_file"):
                wanted = split_stems(spec["split_file"], spec.get("split", "train"))
                index = {stem: i for i, (stem, *_) in enumerate(dataset.pairs)}  # type: ignore[attr-defined]
                if missing := [stem for stem in wanted if stem not in index]:
                    raise DataError(
                        f"split file '{spec['split_file']}' lists '{missing[0]}' (and {len(missing) - 1} "
                        f"more), which is not in '{spec['images']}': use the split file made for that folder"
                    )
                dataset = Subset(dataset, [index[stem] for stem in wanted])
            parts.append(dataset)
        return parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            train = self._pool(self.specs["train"], self.train_transform, self.cache)
            val = self._pool(self.specs["val"], self.eval_transform, self.cache)
            self.train_set, self.val_set = first(train, self.sizes["train"]), first(val, self.sizes["val"])
        if stage in (None, "test") and self.test_set is None:
            sets = [
                first(self._pool(specs, self.eval_transform), self.sizes["test"])
                for specs in self.test_specs.values()
            ]
            self.test_set = sets if self.test_set_names else sets[0]

    def test_dataloader(self) -> Any:
        if not self.test_set_names:
            return super().test_dataloader()
        return [
            self._loader(dataset, shuffle=False, batch_size=self.eval_batch_size) for dataset in self.test_set
        ]


class ImageMaskDataModule(FolderPairDataModule):
    """Images and their label masks: specs ``{"images": dir, "masks": dir}`` plus, optionally, ``binary``
    (a mask's non-zero pixels are 1, for 0 / 255 PNG masks), ``num_classes`` and ``mask_suffix`` (see
    :class:`~datamodules.folders.ImageMaskFolder`).
    Items: ``{"input": Image, "target": Mask (H, W), "name"}``."""

    partner = "masks"

    def folder(self, spec: FolderSpec, transform: Transform | None, cache: DecodedCache | None) -> Dataset:
        return ImageMaskFolder(
            spec["images"],
            spec["masks"],
            mask_suffix=spec.get("mask_suffix", ""),
            num_classes=spec.get("num_classes"),
            binary=bool(spec.get("binary", False)),
            transform=transform,
            cache=cache,
        )


class PhotoPairDataModule(FolderPairDataModule):
    """Input photos and their target photos of the same size (specs ``{"images": dir, "targets": dir}``).
    Items: ``{"input": Image, "target": Image, "name"}``."""

    partner = "targets"

    def folder(self, spec: FolderSpec, transform: Transform | None, cache: DecodedCache | None) -> Dataset:
        return PairedImageFolder(spec["images"], spec["targets"], transform=transform, cache=cache)
