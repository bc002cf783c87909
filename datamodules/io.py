"""Reading images from disk, with one-line errors that name the file and what to do.

Every data set reads through here, so each bad-input check lives in one place: a missing folder or file,
an empty folder, a corrupt or truncated image, a gray / RGBA image where RGB is expected (converted), and an
image too large to load whole (refused). Errors are :class:`DataError`, a :class:`UserError` that stays one
line even when raised in a DataLoader worker.

Images come out as they are meant to be seen: a phone photo whose pixels are stored sideways with an EXIF
orientation tag (0x0112) is turned upright when loaded, and :func:`read_info` reports that upright
(displayed) size, so every size check (pairs, masks, the pixel limit) compares what the user sees.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from PIL import ExifTags, Image, TiffImagePlugin, UnidentifiedImageError
from pydantic import Field

from framework.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Images above this many pixels are refused rather than decoded (a 100 Mpx RGB image is 1.2 GB as float32).
MAX_PIXELS = int(os.environ.get("IMAGING_LAB_MAX_PIXELS", 100_000_000))
_BYTES_PER_PIXEL_CHANNEL = 12  # uint8 decode + float32 tensor + one float32 working copy, per channel


class DataError(UserError):
    """A bad data file. A DataLoader worker re-raises an exception as ``type(e)(<traceback text>)``; this
    class keeps only the original one-line message, so ``run.py`` still prints one line."""

    def __init__(self, message: str = "") -> None:
        if message.startswith("Caught ") and "\nOriginal Traceback" in message:
            last = message.rstrip().rsplit("\n", 1)[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


# EXIF orientation -> the transposition that shows the stored pixels upright (the EXIF 2.3 / TIFF 6.0 table,
# the one ``PIL.ImageOps.exif_transpose`` uses); 5-8 swap width and height, 1 and unknown values do nothing.
# Not exif_transpose itself: it reads the tag again after decoding (for a PNG, also from an eXIf chunk after
# the pixels, which the header read misses), so read_info's size and the loaded image could disagree.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_UNREADABLE_EXIF: set[str] = set()  # files already reported


@dataclass(frozen=True)
class ImageInfo:
    """What an image's header says, read without decoding the pixels: its displayed (upright) size, PIL
    mode and EXIF orientation (1: stored upright)."""

    path: Path
    width: int
    height: int
    mode: str
    orientation: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """(height, width), the order of a tensor's last two dimensions."""
        return self.height, self.width


def _is_image(path: Path) -> bool:
    # "._x.png" (macOS resource forks) and other hidden files are not images, whatever their extension
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by extension) in ``folder``, or ``[folder]`` for an image file; other files
    (SOURCE.txt, hidden files) are skipped."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DataError(f"image folder '{folder}' does not exist: check the path (or paths.shared_data_dir)")
    if folder.is_file():
        if folder.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"'{folder}' is not an image ({', '.join(IMAGE_EXTENSIONS)}): give an image or a folder"
            )
        return [folder]
    files = sorted(p for p in folder.iterdir() if _is_image(p))
    if not files:
        raise DataError(f"image folder '{folder}' holds no images ({', '.join(IMAGE_EXTENSIONS)}): add some")
    return files


def _available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_image_size(info: ImageInfo, channels: int = 3, max_pixels: int | None = None) -> None:
    """Refuse an image too large to load whole: more than ``max_pixels`` (default :data:`MAX_PIXELS`) or
    more than half the memory available now once decoded."""
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    pixels = info.width * info.height
    where = f"image '{info.path}' is {info.width}×{info.height} ({pixels / 1e6:.1f} Mpx)"
    if pixels > limit:
        raise DataError(
            f"{where}, over the {limit / 1e6:g} Mpx limit: refused (not tiled); downscale or cut it into "
            "tiles first, or raise IMAGING_LAB_MAX_PIXELS"
        )
    needed, available = pixels * channels * _BYTES_PER_PIXEL_CHANNEL, _available_memory()
    if available is not None and needed > available // 2:
        raise DataError(
            f"{where} and needs ~{needed / 2**30:.1f} GiB to load, more than half the "
            f"{available / 2**30:.1f} GiB free: refused (not tiled); downscale or cut it into tiles first"
        )


def read_info(path: str | Path) -> ImageInfo:
    """The header of ``path`` (displayed size, PIL mode, EXIF orientation), with the errors of
    :func:`load_image`; cheap, so data sets check every file (pairs, sizes, modes) before a run starts."""
    path = Path(path)
    with _open(path) as image:
        return _info(path, image)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened (not yet decoded) image: 1-8, 1 when absent, unknown or unreadable.

    Read from the header only: JPEG / WebP APP1, TIFF tags, PNG ``eXIf`` / text chunks before the pixels,
    XMP ``tiff:Orientation``. (PIL's ``PngImageFile.getexif`` decodes the whole image to look for an
    ``eXIf`` chunk after the pixels; the base ``Image.getexif`` does not, which keeps :func:`read_info`
    cheap and makes it agree with :func:`load_image`, which orients by this same value.)
    """
    try:
        value = Image.Image.getexif(image).get(ExifTags.Base.Orientation, 1)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct.error) as error:
        name = getattr(image, "filename", "")
        if name not in _UNREADABLE_EXIF:  # once per file, not once per epoch
            _UNREADABLE_EXIF.add(name)
            log.warning("image '%s': EXIF unreadable (%s), its orientation is ignored", name, error)
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _orients_itself(image: Image.Image) -> bool:
    """Pillow applies a TIFF's orientation tag itself when it decodes the pixels (python-pillow PR #4063)."""
    return isinstance(image, TiffImagePlugin.TiffImageFile)


def _info(path: Path, image: Image.Image) -> ImageInfo:
    orientation = exif_orientation(image)
    width, height = image.size
    if _orients_itself(image):  # the stored size: Pillow < 11 reports it until decoded, >= 11 the upright one
        width, height = image.tag_v2.get(256, width), image.tag_v2.get(257, height)
    if orientation >= 5:
        width, height = height, width
    return ImageInfo(path, width, height, image.mode, orientation)


def _open(path: Path) -> Image.Image:
    """``Image.open`` (lazy: reads the header only) with its failures as one-line :class:`DataError`."""
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise DataError(f"image '{path}' does not exist: check the path") from None
    except Image.DecompressionBombError:
        raise DataError(
            f"image '{path}' is too large to load whole (PIL's decompression-bomb limit): refused (not "
            "tiled); downscale or cut it into tiles first"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"image '{path}' is not a readable image ({error}): replace or remove it") from None


def note_conversions(infos: list[ImageInfo], mode: str) -> None:
    """Say once (a log warning) how many images are not in ``mode`` and will be converted to it."""
    others = [info for info in infos if info.mode != mode and not (mode == "L" and info.mode == "1")]
    if others:
        modes = ", ".join(sorted({info.mode for info in others}))
        log.warning(
            "%d of %d images are %s, not %s (first: '%s'): converted to %s%s",
            len(others),
            len(infos),
            modes,
            mode,
            others[0].path,
            mode,
            ", transparency composited on white" if any("A" in info.mode for info in others) else "",
        )


def _decode(path: Path, max_pixels: int | None, channels: int) -> Image.Image:
    """Open and decode ``path`` fully (so truncation shows here), after the size check, turned upright by
    its EXIF orientation."""
    image = _open(path)
    try:
        info = _info(path, image)
        check_image_size(info, channels, max_pixels)
        if _orients_itself(image) and info.orientation >= 5:
            # Pillow (seen with 13.0) memory-maps an uncompressed one-band TIFF (L, P, I;16) with its upright,
            # swapped size, which scrambles the pixels; decoded from memory (no mmap), it comes out right
            image.close()
            image = Image.open(io.BytesIO(path.read_bytes()))
        image.load()
    except DataError:
        image.close()
        raise
    except (OSError, SyntaxError, ValueError) as error:
        image.close()
        raise DataError(f"image '{path}' is corrupt or truncated ({error}): replace or remove it") from None
    if info.orientation in _UPRIGHT and not _orients_itself(image):
        upright = image.transpose(_UPRIGHT[info.orientation])  # keeps mode, palette and info (transparency)
        image.close()
        image = upright
    if image.size != (info.width, info.height):  # what read_info promised the data sets' size checks
        image.close()
        raise DataError(
            f"image '{path}' decodes to {image.width}×{image.height} but its header says "
            f"{info.width}×{info.height} (EXIF orientation {info.orientation}): re-save it upright"
        )
    return image


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` in PIL ``mode``; transparency is composited on white when going to RGB or L."""
    if image.mode == mode:
        return image
    if mode in ("RGB", "L") and (image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image.alpha_composite(rgba)
    if image.mode.startswith("I;16") and mode in ("RGB", "L"):
        array = np.asarray(image, dtype=np.float64) / 257.0  # 16-bit gray to 8 bits: scaled, not clipped
        image = Image.fromarray(array.round().astype(np.uint8), "L")
    return image.convert(mode)


def load_image(path: str | Path, mode: str = "RGB", max_pixels: int | None = None) -> torch.Tensor:
    """Load ``path`` as a float tensor (C, H, W) in [0, 1]; ``mode`` is a PIL mode ("RGB" or "L").

    The image is upright (its EXIF orientation applied), of :func:`read_info`'s size. Gray, palette and
    RGBA files are converted to ``mode`` (transparency is composited on white); an image over
    ``max_pixels`` (default :data:`MAX_PIXELS`) or too large for free memory is refused.
    """
    return load_image_uint8(path, mode, max_pixels).float().div_(255.0)


def load_image_uint8(path: str | Path, mode: str = "RGB", max_pixels: int | None = None) -> torch.Tensor:
    """:func:`load_image`'s 8-bit levels, a uint8 tensor (C, H, W) laid out channels-last (a view of the
    decoded H × W × C array): for loaders that crop and resize before converting. torchvision's antialiased
    resize of a 640×480 photo to 256², one loaded core: 2.5 ms in this layout, 5.0 contiguous, 8.2 in float.
    """
    path = Path(path)
    channels = Image.getmodebands(mode)
    with _decode(path, max_pixels, channels) as image:
        array = np.asarray(to_mode(image, mode), dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


CacheMB = Annotated[float, Field(ge=0.0)]  # a DataModule's ``cache_mb``: 0 keeps nothing


class DecodedCache:
    """Decoded images kept in memory, the first ones up to ``max_mb`` (later ones are made every time): a
    loader that visits the same photos every epoch decodes each once. Kept, never evicted: under a shuffled
    order an evicting cache would mostly miss. Per process: each DataLoader worker fills its own
    (``persistent_workers`` keeps them from one epoch to the next). What it returns is shared: do not
    modify it in place."""

    def __init__(self, max_mb: float) -> None:
        self.max_bytes = int(max_mb * 2**20)
        self.bytes = 0
        self._kept: dict[Hashable, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The tensor kept under ``key``, else ``make()`` (kept while the budget lasts)."""
        kept = self._kept.get(key)
        if kept is not None:
            return kept
        made = make()
        size = made.numel() * made.element_size()
        if self.bytes + size <= self.max_bytes:
            self._kept[key] = made
            self.bytes += size
        return made


def load_mask(path: str | Path, max_pixels: int | None = None) -> torch.Tensor:
    """Load a label mask as an int64 tensor (H, W) of its stored values: class indices of a palette
    ("P") or gray ("L", "I;16", "1") PNG, upright like :func:`load_image`. A colour mask is refused: its
    colours are not class indices."""
    path = Path(path)
    with _decode(path, max_pixels, 1) as image:
        if image.mode not in ("P", "L", "1", "I", "I;16", "I;16L", "I;16B"):
            raise DataError(
                f"mask '{path}' is a {image.mode} image, not a label mask: save it as a one-channel PNG "
                "(mode L or P) whose values are the class indices"
            )
        array = np.asarray(image)
    return torch.from_numpy(array.astype(np.int64))


def save_image(image: torch.Tensor, path: str | Path, compress_level: int = 6) -> Path:
    """Save a (C, H, W) tensor in [0, 1] as an 8-bit PNG/JPEG, atomically (temp file + rename).

    ``compress_level``: PNG's zlib level, 0-9 (Pillow's default 6; 1 encodes a 300×400 RGBA photo ~4× faster
    for ~5 % more bytes: what ``stage=predict`` uses)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    array = array.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    tmp = path.with_name(f".{path.name}.tmp")
    file_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    pil.save(tmp, format=file_format, **({"compress_level": compress_level} if file_format == "PNG" else {}))
    tmp.replace(path)
    return path
