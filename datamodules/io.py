"""Reading images from disk, with one-line errors that name the file and what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from framework.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by extension) in ``folder``; other files such as SOURCE.txt are skipped."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise UserError(f"image folder '{folder}' does not exist: check the path (or paths.shared_data_dir)")
    if folder.is_file():
        if folder.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UserError(f"'{folder}' is not an image ({', '.join(IMAGE_EXTENSIONS)})")
        return [folder]
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise UserError(f"image folder '{folder}' holds no images ({', '.join(IMAGE_EXTENSIONS)}): add some")
    return files


def load_image(path: str | Path, mode: str = "RGB") -> torch.Tensor:
    """Load ``path`` as a float tensor (C, H, W) in [0, 1]; ``mode`` is a PIL mode ("RGB" or "L").

    Grayscale and RGBA files are converted to ``mode`` (RGBA is composited on white).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "P") and mode == "RGB":
                rgba = image.convert("RGBA")
                image = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image.alpha_composite(rgba)
            image = image.convert(mode)
    except FileNotFoundError:
        raise UserError(f"image '{path}' does not exist: check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise UserError(f"image '{path}' is corrupt or truncated ({error}): replace or remove it") from None
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Save a (C, H, W) tensor in [0, 1] as an 8-bit PNG/JPEG, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    array = array.permute(1, 2, 0).numpy()
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    tmp = path.with_name(f".{path.name}.tmp")
    pil.save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    tmp.replace(path)
    return path
