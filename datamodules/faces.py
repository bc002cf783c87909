"""64×64 gray face images in [0, 1] for phase retrieval: CelebA, and an offline EG1800 face stand-in.

* :class:`CelebADataModule`: torchvision's ``CelebA`` (its download code; official train / valid / test
  splits), aligned images centre-cropped to 120 px, converted to gray and resized to 64×64 — the CelebA
  protocol of the phase-retrieval literature. Not available offline.
* :class:`EG1800FacesDataModule`: the **EG1800 face stand-in (not CelebA)** for machines without CelebA:
  the 1341 portraits of ``shared/data/portrait/eg1800``, each cropped to a face-centred square (OpenCV's
  Haar face detector, largest face, a square ``crop_scale`` × the face box; a fallback from the person mask
  when no face is found) and resized to 64×64 gray. Its split (1141 / 100 / 100, seed 0) is the committed
  file ``datamodules/splits/eg1800_faces.json``. Results on it must be reported as the EG1800 stand-in.

Both build the processed images once and cache them as uint8 tensors under ``root``.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import PositiveInt
from torch import nn

from datamodules.base import DictDataset, ImageDataModule, ImageFileDataset
from framework.errors import UserError
from framework.paths import shared_data_dir

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_DIR = Path(__file__).resolve().parent / "splits"
EG1800_SPLIT_FILE = SPLIT_DIR / "eg1800_faces.json"
STAND_IN = "EG1800 face stand-in (not CelebA)"
EG1800_CROP_VERSION = 1  # bump when the cropping changes: older caches are then rebuilt


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """A PIL "L" image → uint8 tensor (1, H, W)."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())[None]


class FaceImageDataModule(ImageDataModule):
    """Shared part of the face DataModules: uint8 images (N, 1, n, n) per split, kept in memory.

    Batches are ``{"target": (B, 1, n, n) in [0, 1]}``. Subclasses implement :meth:`_load` and set
    ``dataset_label``, the name to report results under.

    Args:
        root: where the processed tensors are cached (and, for CelebA, torchvision keeps the files).
        image_size: side of the square gray images.
        pad: measurement padding per side, read by the task's forward model as ``${data.pad}``.
        val_size / test_size / train_size: use the first that many images of each split (all when null).
    """

    dataset_label = "faces"

    def __init__(
        self,
        root: str = "data",
        image_size: PositiveInt = 64,
        pad: int = 16,
        val_size: int | None = None,
        test_size: int | None = None,
        train_size: int | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = 500,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, num_workers, augmentation, predict_input)
        if image_size < 8:
            raise UserError(f"data.image_size={image_size} is too small: use at least 8 (default 64)")
        self.root, self.image_size, self.pad = Path(root).expanduser(), image_size, pad
        self.val_size, self.test_size, self.train_size = val_size, test_size, train_size

    def _load(self, split: str) -> torch.Tensor:
        """uint8 images (N, 1, image_size, image_size) of ``split`` (train | val | test)."""
        raise NotImplementedError

    def _first(self, images: torch.Tensor, size: int | None, split: str) -> torch.Tensor:
        if size is None:
            return images
        if size > len(images):
            log.warning("data: %s split has %d images, fewer than the %d asked for", split, len(images), size)
        return images[:size]

    def prepare_data(self) -> None:
        for split in SPLITS:
            self._load(split)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            self.train_set = DictDataset(target=self._first(self._load("train"), self.train_size, "train"))
            self.val_set = DictDataset(target=self._first(self._load("val"), self.val_size, "val"))
        if stage in (None, "test") and self.test_set is None:
            self.test_set = DictDataset(target=self._first(self._load("test"), self.test_size, "test"))

    def predict_dataset(self, path: str) -> ImageFileDataset:
        """The user's images as gray ``image_size`` squares (centre square crop, then resize)."""
        size = self.image_size

        def to_square(image: torch.Tensor) -> torch.Tensor:
            h, w = image.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            square = image[:, top : top + side, left : left + side]
            return F.interpolate(square[None], size=(size, size), mode="bilinear", antialias=True)[0]

        return ImageFileDataset(path, mode="L", key="target", transform=to_square)


# -- CelebA --------------------------------------------------------------------------------------------
CELEBA_SPLITS = {"train": "train", "val": "valid", "test": "test"}


class CelebATransform:
    """PIL RGB image → centre crop ``crop_size`` → gray → ``size``² (PIL bilinear) → uint8 (1, n, n)."""

    def __init__(self, crop_size: int = 120, size: int = 64) -> None:
        self.crop_size, self.size = crop_size, size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        w, h = image.size
        side = min(self.crop_size, w, h)
        left, top = (w - side) // 2, (h - side) // 2
        square = image.crop((left, top, left + side, top + side)).convert("L")
        return _pil_to_uint8(square.resize((self.size, self.size), Image.Resampling.BILINEAR))


class _ImagesOnly(torch.utils.data.Dataset):
    """The images of a torchvision data set whose items are (image, target)."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset[index][0]


class CelebADataModule(FaceImageDataModule):
    """CelebA (aligned), centre crop ``crop_size`` → ``image_size``² gray, official train / valid / test.

    torchvision downloads it into ``<root>/celeba`` (needs ``gdown`` and internet); the processed split is
    cached as ``<root>/celeba_<image_size>_gray_<split>.pt`` (uint8), so later runs read only that file.
    Offline there is no CelebA: ``data=eg1800_faces`` is the labelled stand-in.

    Args:
        crop_size: side of the centre crop of the 178×218 aligned images before resizing.
        download: use torchvision's download code when the files are missing.
        (others: see :class:`FaceImageDataModule`)
    """

    def __init__(
        self,
        root: str = "data",
        image_size: PositiveInt = 64,
        pad: int = 16,
        crop_size: int = 120,
        val_size: int | None = 2000,
        test_size: int | None = None,
        train_size: int | None = None,
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int | None = 500,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(
            root, image_size, pad, val_size, test_size, train_size, batch_size, eval_batch_size,
            num_workers, augmentation, predict_input,
        )  # fmt: skip
        self.crop_size, self.download = crop_size, download
        self.dataset_label = f"CelebA {image_size}×{image_size} gray (centre crop {crop_size})"
        self._cache: dict[str, torch.Tensor] = {}

    def cache_file(self, split: str) -> Path:
        crop = "" if self.crop_size == 120 else f"_crop{self.crop_size}"
        return self.root / f"celeba_{self.image_size}{crop}_gray_{split}.pt"

    def _load(self, split: str) -> torch.Tensor:
        if split in self._cache:
            return self._cache[split]
        path = self.cache_file(split)
        if path.exists():
            images = torch.load(path, map_location="cpu", weights_only=True)
        else:
            images = self._build(split)
            _atomic_save(images, path)
            log.info("CelebA %s: %d images cached in %s", split, len(images), path)
        self._cache[split] = images
        return images

    def _build(self, split: str) -> torch.Tensor:
        import torchvision

        transform = CelebATransform(self.crop_size, self.image_size)
        try:
            dataset = torchvision.datasets.CelebA(
                str(self.root), split=CELEBA_SPLITS[split], target_type=[], transform=transform,
                download=self.download,
            )  # fmt: skip
        # torchvision raises RuntimeError (no gdown, files missing, md5) / URLError / OSError here
        except Exception as error:
            raise UserError(
                f"CelebA is not in '{self.root / 'celeba'}' and could not be downloaded "
                f"({type(error).__name__}): go online with gdown installed, or put img_align_celeba/ and the "
                "list_*.txt files there; offline, use data=eg1800_faces for the offline stand-in"
            ) from None
        log.info("CelebA %s: processing %d images (once)", split, len(dataset))
        loader = torch.utils.data.DataLoader(
            _ImagesOnly(dataset), batch_size=512, num_workers=self.num_workers, shuffle=False
        )
        return torch.cat(list(loader))


# -- EG1800 face stand-in ------------------------------------------------------------------------------
def haar_face_detector() -> Any | None:
    """OpenCV's frontal-face Haar cascade (shipped in opencv-python-headless < 5), or None without it."""
    try:
        import cv2
    except ImportError:
        return None
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not path.exists():  # OpenCV 5 moved the cascades out of the wheel
        return None
    detector = cv2.CascadeClassifier(str(path))
    return None if detector.empty() else detector


def detect_face(detector: Any, gray: np.ndarray, mask: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """The largest frontal face (x, y, w, h) that fits the person mask, when one is given.

    A face fits when its box is at least half person and the head estimated from the mask
    (:func:`face_box_from_mask`) is not more than a face width above it, nor both much larger and off to a
    side — which drops the false detections on a chest, a fist or a cheek seen on EG1800.
    """
    import cv2

    faces = detector.detectMultiScale(
        cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5, minSize=(40, 40)
    )
    head = face_box_from_mask(mask) if mask is not None else None
    for x, y, w, h in sorted((tuple(int(v) for v in f) for f in faces), key=lambda f: -f[2] * f[3]):
        if mask is not None and (mask[y : y + h, x : x + w] > 0).mean() < 0.5:
            continue
        if head is not None:
            dx = (head[0] + head[2] / 2 - x - w / 2) / w
            dy = (head[1] + head[3] / 2 - y - h / 2) / w
            if dy < -1.0 or (head[2] / w > 1.8 and abs(dx) > 0.5):
                continue
        return x, y, w, h
    return None


def face_box_from_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """A face box (x, y, w, h) estimated from the head, the top part of a person mask (None if empty).

    The head's top is the first row at least a tenth of the image wide; its width, the widest rows of the
    band below (as tall as the head is wide); the face box is 0.9 of it, its top 0.32 head widths below the
    top of the head (calibrated on the EG1800 images where Haar finds a face: median size ratio 0.99).
    """
    widths = (mask > 0).sum(axis=1)
    rows = np.flatnonzero(widths >= 0.1 * mask.shape[1])  # skip thin things above the head (hair pins, poles)
    if rows.size == 0:
        return None
    top = int(rows[0])
    head_w = 0
    for _ in range(3):  # band as tall as the head is wide, the head's width as that band's widest rows
        band = widths[top : top + max(head_w, 20)]
        head_w = int(np.percentile(band[band > 0], 90))
    band_mask = mask[top : top + head_w] > 0
    cx = float(np.nonzero(band_mask)[1].mean())
    w = max(round(0.9 * head_w), 8)
    return round(cx - w / 2), round(top + 0.32 * head_w), w, w


def square_around(
    box: tuple[int, int, int, int], scale: float, width: int, height: int
) -> tuple[int, int, int]:
    """(left, top, side) of a square ``scale`` × the box's size around its centre, moved / shrunk to fit."""
    x, y, w, h = box
    side = min(round(scale * max(w, h)), width, height)
    left = min(max(round(x + w / 2 - side / 2), 0), width - side)
    top = min(max(round(y + h / 2 - side / 2), 0), height - side)
    return left, top, side


def eg1800_face_crop(
    image_path: Path, mask_path: Path, size: int = 64, scale: float = 1.8, detector: Any | None = None
) -> tuple[torch.Tensor, bool]:
    """A portrait → uint8 (1, size, size) face-centred gray square, and whether the mask fallback was used."""
    with Image.open(image_path) as image:
        gray = image.convert("L")
    mask = np.asarray(Image.open(mask_path).convert("L")) if mask_path.exists() else None
    box = detect_face(detector, np.asarray(gray), mask) if detector is not None else None
    fallback = box is None
    if box is None and mask is not None:
        box = face_box_from_mask(mask)
    if box is None:  # neither a face nor a person: the top square of the image
        box = (0, 0, min(gray.size), min(gray.size))
    left, top, side = square_around(box, scale, *gray.size)
    crop = gray.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
    return _pil_to_uint8(crop), fallback


def make_eg1800_split(
    stems: Sequence[str], val: int = 100, test: int = 100, seed: int = 0
) -> dict[str, list[str]]:
    """A seeded random split of ``stems``; each list is in random order (its first n: a random subset)."""
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    return {"val": order[:val], "test": order[val : val + test], "train": order[val + test :]}


def write_eg1800_split(source_dir: str | Path, path: Path = EG1800_SPLIT_FILE, seed: int = 0) -> Path:
    """(Re)write the committed split file from the images of ``source_dir`` (done once, then committed)."""
    stems = [p.stem for p in sorted((Path(source_dir) / "images").glob("*.jpg"))]
    split = make_eg1800_split(stems, seed=seed)
    payload = {
        "description": f"{STAND_IN}: split of shared/data/portrait/eg1800 (random, seed {seed})",
        "seed": seed,
        **{name: split[name] for name in SPLITS},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def read_split(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"split file '{path}' does not exist: restore datamodules/splits/ from git")
    data = json.loads(path.read_text())
    split = {name: list(data[name]) for name in SPLITS}
    seen: set[str] = set()
    for stems in split.values():
        if seen & set(stems):
            raise UserError(f"split file '{path}' lists an image in two splits: restore it from git")
        seen |= set(stems)
    return split


class EG1800FacesDataModule(FaceImageDataModule):
    """EG1800 face stand-in (not CelebA): face-centred 64×64 gray crops of the EG1800 portraits.

    Each portrait of ``source_dir/images`` (with ``source_dir/masks`` person masks) is cropped to a square of
    ``crop_scale`` × the largest Haar face box (CelebA-like framing: the whole face and some hair; shrunk to
    the image when larger), or, when no face is found or OpenCV is missing, × a face box estimated from the
    top of the person mask. On the 1341 images, Haar gives 1273 (94.9 %), the mask fallback 68
    (``fallback_stems`` lists those of a run). The processed images are cached in
    ``<root>/eg1800_faces_<image_size>.pt`` (only the images a run needs are built; later runs add the rest).

    Args:
        source_dir: the EG1800 folder (``images/NNNNN.jpg``, ``masks/NNNNN.png``; default: the shared one).
        split_file: JSON with ``train`` / ``val`` / ``test`` stems (committed: 1141 / 100 / 100, seed 0).
        crop_scale: side of the square crop over the face box's side.
        limit: at most this many images per split (quick looks and tests).
        (others: see :class:`FaceImageDataModule`)
    """

    def __init__(
        self,
        source_dir: str | Path | None = None,
        root: str = "data",
        image_size: PositiveInt = 64,
        pad: int = 16,
        split_file: str | None = None,
        crop_scale: float = 1.8,
        limit: int | None = None,
        val_size: int | None = None,
        test_size: int | None = None,
        train_size: int | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = 500,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__(
            root, image_size, pad, val_size, test_size, train_size, batch_size, eval_batch_size,
            num_workers, augmentation, predict_input,
        )  # fmt: skip
        self.source_dir = Path(source_dir or shared_data_dir() / "portrait" / "eg1800").expanduser()
        self.split_file = Path(split_file) if split_file else EG1800_SPLIT_FILE
        self.crop_scale, self.limit = crop_scale, limit
        self.dataset_label = STAND_IN
        self.fallback_stems: list[str] = []  # stems cropped from the mask (no face found), after _load

    @property
    def cache_file(self) -> Path:
        return self.root / f"eg1800_faces_{self.image_size}.pt"

    def _split_stems(self, split: str) -> list[str]:
        stems = read_split(self.split_file)[split]
        return stems[: self.limit] if self.limit else stems

    def _cache_key(self, detector: Any | None) -> dict[str, Any]:
        return {
            "version": EG1800_CROP_VERSION,
            "size": self.image_size,
            "crop_scale": self.crop_scale,
            "detector": detector is not None,
        }

    def _read_cache(self, key: dict[str, Any]) -> dict[str, Any]:
        if self.cache_file.exists():
            cache = torch.load(self.cache_file, map_location="cpu", weights_only=True)
            if cache.get("key") == key:
                return cache
            log.info("%s: cache %s was built with other settings, rebuilding", STAND_IN, self.cache_file)
        empty = torch.empty(0, 1, self.image_size, self.image_size, dtype=torch.uint8)
        return {"key": key, "stems": [], "images": empty, "fallback": []}

    def _load(self, split: str) -> torch.Tensor:
        wanted = self._split_stems(split)
        images_dir, masks_dir = self.source_dir / "images", self.source_dir / "masks"
        detector = haar_face_detector()
        cache = self._read_cache(self._cache_key(detector))
        cached = set(cache["stems"])
        missing = [s for s in wanted if s not in cached]
        if missing:
            if not images_dir.is_dir():
                raise UserError(
                    f"EG1800 folder '{images_dir}' does not exist: set data.source_dir=<eg1800 folder> "
                    "(or paths.shared_data_dir)"
                )
            if detector is None:
                log.warning("%s: no OpenCV Haar cascade (pip install 'opencv-python-headless<5'); "
                            "cropping every face from the person mask", STAND_IN)  # fmt: skip
            crops, fallback = [], []
            for stem in missing:
                path = images_dir / f"{stem}.jpg"
                if not path.exists():
                    raise UserError(
                        f"'{path}' (listed in {self.split_file}) is missing: restore the EG1800 folder"
                    )
                crop, used = eg1800_face_crop(path, masks_dir / f"{stem}.png", self.image_size,
                                              self.crop_scale, detector)  # fmt: skip
                crops.append(crop)
                fallback.append(used)
            cache["stems"] = [*cache["stems"], *missing]
            cache["images"] = torch.cat([cache["images"], torch.stack(crops)])
            cache["fallback"] = [*cache["fallback"], *fallback]
            _atomic_save(cache, self.cache_file)
            log.info("%s: %d crops built (%d from the mask fallback), cached in %s",
                     STAND_IN, len(missing), sum(fallback), self.cache_file)  # fmt: skip
        index = {stem: i for i, stem in enumerate(cache["stems"])}
        rows = [index[s] for s in wanted]
        self.fallback_stems = sorted(
            {*self.fallback_stems, *(s for s in wanted if cache["fallback"][index[s]])}
        )
        return cache["images"][rows].clone()
