"""Folder data sets any task can use: a folder of images, image + mask pairs (segmentation), and input +
target image pairs (restoration / auto-correction), matched by file stem.

Items are dicts ``{"input": tv_tensors.Image, "target": tv_tensors.Image | tv_tensors.Mask, "name": stem}``
(images float (C, H, W) in [0, 1], masks int64 (H, W)), the keys :class:`ImagingModule` reads. ``transform``
is a ``torchvision.transforms.v2`` transform called on the whole dict, so a random crop or flip moves an
image and its mask (or target) together, and masks are resized with nearest-neighbour.

Everything that can be checked from the files' headers is checked when the data set is built, before a run
starts: a missing or empty folder, an unreadable file, an image or mask without its partner, a mask whose
size differs from its image's, a colour mask, an image too large to load. Sizes are as displayed: a phone
photo stored sideways with an EXIF orientation tag is loaded upright, and its mask or target must have the
upright size (:func:`~datamodules.io.read_info`). Each is a one-line
:class:`~datamodules.io.DataError` naming the file and what to do. A file that is truncated past its header
is caught when it is read, also naming the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from datamodules.io import (
    DataError,
    DecodedCache,
    ImageInfo,
    check_image_size,
    list_images,
    load_image,
    load_image_uint8,
    load_mask,
    note_conversions,
    read_info,
)

log = logging.getLogger(__name__)

Item = dict[str, Any]
Transform = Callable[[Item], Item]
MASK_MODES = ("P", "L", "1", "I", "I;16", "I;16L", "I;16B")


def _channels(mode: str) -> int:
    return 1 if mode in ("L", "1", "I", "F") else 3


def _by_stem(folder: str | Path, suffix: str = "") -> dict[str, Path]:
    """Images of ``folder`` by stem (with ``suffix`` removed); two files with one stem are an error."""
    files: dict[str, Path] = {}
    for path in list_images(folder):
        stem = path.stem.removesuffix(suffix) if suffix and path.stem.endswith(suffix) else path.stem
        if stem in files:
            raise DataError(
                f"'{files[stem]}' and '{path}' have the same name: keep one (pairs are matched by name)"
            )
        files[stem] = path
    return files


def pair_by_stem(
    first_dir: str | Path,
    second_dir: str | Path,
    first: str = "image",
    second: str = "mask",
    second_suffix: str = "",
) -> list[tuple[str, Path, Path]]:
    """``(stem, first file, second file)`` for every stem of ``first_dir``, sorted; a file of either folder
    without its partner is an error naming it (``second_suffix``: ``"_mask"`` pairs ``a.jpg`` with
    ``a_mask.png``)."""
    firsts, seconds = _by_stem(first_dir), _by_stem(second_dir, second_suffix)
    if lonely := sorted(firsts.keys() - seconds.keys()):
        more = f" (and {len(lonely) - 1} more)" if len(lonely) > 1 else ""
        raise DataError(
            f"{first} '{firsts[lonely[0]]}'{more} has no {second} in '{second_dir}' (looked for "
            f"'{lonely[0]}{second_suffix}.*'): add it or remove the {first}"
        )
    if lonely := sorted(seconds.keys() - firsts.keys()):
        more = f" (and {len(lonely) - 1} more)" if len(lonely) > 1 else ""
        raise DataError(
            f"{second} '{seconds[lonely[0]]}'{more} has no {first} in '{first_dir}' (looked for "
            f"'{lonely[0]}.*'): add it or remove the {second}"
        )
    return [(stem, firsts[stem], seconds[stem]) for stem in sorted(firsts)]


def _decoded(
    cache: DecodedCache | None, key: tuple[str, ...], make: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """``make()``, or what ``cache`` keeps under ``key`` (decoded once, then read from memory)."""
    return make() if cache is None else cache.get(key, make)


def _image(path: Path, mode: str, max_pixels: int | None, cache: DecodedCache | None) -> tv_tensors.Image:
    """:func:`~datamodules.io.load_image`'s float image of ``path``; a cache keeps its 8-bit levels."""
    levels = _decoded(cache, ("image", str(path), mode), lambda: load_image_uint8(path, mode, max_pixels))
    return tv_tensors.Image(levels.float().div_(255.0))


def _compact(mask: torch.Tensor) -> torch.Tensor:
    """A mask in the smallest type that holds it (uint8 for class indices below 256): what a cache keeps."""
    small = mask.numel() and int(mask.min()) >= 0 and int(mask.max()) < 256
    return mask.to(torch.uint8) if small else mask


def _size(info: ImageInfo) -> str:
    return f"{info.width}×{info.height}"


class ImageFolder(Dataset):
    """Every image of a folder (or one image file) as ``{"input": Image, "name": stem}``.

    Images in another mode than ``mode`` (gray, palette, RGBA where RGB is expected) are converted, and
    reported once in the log; transparency is composited on white.
    """

    def __init__(
        self,
        root: str | Path,
        mode: str = "RGB",
        transform: Transform | None = None,
        key: str = "input",
        max_pixels: int | None = None,
    ) -> None:
        self.files = list_images(root)
        infos = [read_info(path) for path in self.files]
        for info in infos:
            check_image_size(info, _channels(mode), max_pixels)
        note_conversions(infos, mode)
        self.mode, self.transform, self.key, self.max_pixels = mode, transform, key, max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Item:
        path = self.files[index]
        item: Item = {
            self.key: tv_tensors.Image(load_image(path, self.mode, self.max_pixels)),
            "name": path.stem,
        }
        return self.transform(item) if self.transform is not None else item


class ImageMaskFolder(Dataset):
    """Images and their label masks, paired by stem: ``{"input": Image, "target": Mask, "name": stem}``.

    Args:
        image_dir / mask_dir: the two folders; ``mask_suffix`` is what a mask's stem adds (``"_mask"``).
        mode: PIL mode of the images (converted when a file differs).
        num_classes: masks must hold values below it (or ``ignore_index``); checked as each mask is read.
        binary: masks become 0 / 1 (any non-zero value is 1), e.g. for 0 / 255 PNG masks.
        transform: a v2 transform of the item dict (joint: image and mask move together).
        cache: keeps the decoded 8-bit images and masks (:class:`~datamodules.io.DecodedCache`), so a split
            read every epoch decodes each file once; the items are the same with or without it.
    """

    def __init__(
        self,
        image_dir: str | Path,
        mask_dir: str | Path,
        mode: str = "RGB",
        mask_suffix: str = "",
        num_classes: int | None = None,
        ignore_index: int | None = 255,
        binary: bool = False,
        transform: Transform | None = None,
        max_pixels: int | None = None,
        cache: DecodedCache | None = None,
    ) -> None:
        self.pairs = pair_by_stem(image_dir, mask_dir, "image", "mask", mask_suffix)
        infos = []
        for _, image_path, mask_path in self.pairs:
            image, mask = read_info(image_path), read_info(mask_path)
            check_image_size(image, _channels(mode), max_pixels)
            if mask.mode not in MASK_MODES:
                raise DataError(
                    f"mask '{mask_path}' is a {mask.mode} image, not a label mask: save it as a one-channel "
                    "PNG (mode L or P) whose values are the class indices"
                )
            if mask.size != image.size:
                raise DataError(
                    f"mask '{mask_path}' is {_size(mask)} but its image '{image_path}' is {_size(image)}: "
                    "a mask must have its image's size; re-export it (or remove the pair)"
                )
            infos.append(image)
        note_conversions(infos, mode)
        self.mode, self.num_classes, self.ignore_index = mode, num_classes, ignore_index
        self.binary, self.transform, self.max_pixels, self.cache = binary, transform, max_pixels, cache

    def __len__(self) -> int:
        return len(self.pairs)

    def _mask(self, path: Path) -> torch.Tensor:
        mask = load_mask(path, self.max_pixels)
        if self.binary:
            return (mask > 0).long()
        if self.num_classes is not None:
            valid = mask < self.num_classes
            if self.ignore_index is not None:
                valid |= mask == self.ignore_index
            if not bool(valid.all()):
                bad = int(mask[~valid].max())
                raise DataError(
                    f"mask '{path}' holds the value {bad}, not a class index below num_classes="
                    f"{self.num_classes}: fix the mask, or set binary=true for 0/255 masks"
                )
        return mask

    def __getitem__(self, index: int) -> Item:
        stem, image_path, mask_path = self.pairs[index]
        key = ("mask", str(mask_path), str(self.binary))
        mask = _decoded(self.cache, key, lambda: _compact(self._mask(mask_path)))
        item: Item = {
            "input": _image(image_path, self.mode, self.max_pixels, self.cache),
            "target": tv_tensors.Mask(mask.to(torch.int64, copy=True)),
            "name": stem,
        }
        return self.transform(item) if self.transform is not None else item


class PairedImageFolder(Dataset):
    """Input images and their target images, paired by stem: ``{"input": Image, "target": Image, "name"}``
    (e.g. degraded photos and their corrected versions).

    A target must be ``scale`` times its input's size (1: the same size). A v2 ``transform`` moves both
    together; random crops need ``scale=1``. ``cache`` keeps the decoded 8-bit photos, as
    :class:`ImageMaskFolder`'s.
    """

    def __init__(
        self,
        input_dir: str | Path,
        target_dir: str | Path,
        mode: str = "RGB",
        target_mode: str | None = None,
        target_suffix: str = "",
        scale: int = 1,
        transform: Transform | None = None,
        max_pixels: int | None = None,
        cache: DecodedCache | None = None,
    ) -> None:
        self.pairs = pair_by_stem(input_dir, target_dir, "input", "target", target_suffix)
        self.mode, self.target_mode = mode, target_mode or mode
        inputs, targets = [], []
        for _, input_path, target_path in self.pairs:
            given, wanted = read_info(input_path), read_info(target_path)
            check_image_size(given, _channels(self.mode), max_pixels)
            check_image_size(wanted, _channels(self.target_mode), max_pixels)
            if (wanted.width, wanted.height) != (given.width * scale, given.height * scale):
                times = "its input's size" if scale == 1 else f"{scale}× its input's size"
                raise DataError(
                    f"target '{target_path}' is {_size(wanted)} but its input '{input_path}' is "
                    f"{_size(given)}: a target must be {times}; re-export it (or remove the pair)"
                )
            inputs.append(given)
            targets.append(wanted)
        note_conversions(inputs, self.mode)
        note_conversions(targets, self.target_mode)
        self.transform, self.max_pixels, self.cache = transform, max_pixels, cache

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Item:
        stem, input_path, target_path = self.pairs[index]
        item: Item = {
            "input": _image(input_path, self.mode, self.max_pixels, self.cache),
            "target": _image(target_path, self.target_mode, self.max_pixels, self.cache),
            "name": stem,
        }
        return self.transform(item) if self.transform is not None else item
