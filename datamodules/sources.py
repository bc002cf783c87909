"""Data sources shared by all DataModules: torchvision data sets (with their download code) and local copies.

Offline, a data set is read from a local copy when one exists: Debian's ``dataset-fashion-mnist`` package
(``/usr/share/datasets/fashion-mnist``) or a folder of the original gzipped IDX files (e.g.
``../shared/data/mnist_family/MNIST/raw``). The files are unpacked into ``<data_dir>/<Name>/raw``, where
torchvision finds them and downloads nothing (Debian recompresses the archives, so their md5 differs from
torchvision's and they cannot simply be linked).
"""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import torch
import torchvision

from framework.errors import UserError

log = logging.getLogger(__name__)

MNIST_FAMILY: dict[str, tuple[str, dict[str, str]]] = {
    "mnist": ("MNIST", {}),
    "fashion_mnist": ("FashionMNIST", {}),
    "kmnist": ("KMNIST", {}),
    "emnist": ("EMNIST", {"split": "balanced"}),
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def unpack_local_copy(source_dir: str | Path, root: str | Path, class_name: str) -> bool:
    """Unpack the ``*.gz`` IDX files of ``source_dir`` into ``<root>/<class_name>/raw``; True if any exist."""
    source_dir = Path(source_dir)
    archives = sorted(source_dir.glob("*-ubyte.gz")) if source_dir.is_dir() else []
    if not archives:
        return False
    raw = Path(root) / class_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        target = raw / archive.name.removesuffix(".gz")
        if not target.exists():
            tmp = target.with_name(f".{target.name}.tmp")
            with gzip.open(archive, "rb") as source, open(tmp, "wb") as sink:
                shutil.copyfileobj(source, sink)
            tmp.replace(target)
    return True


def load_mnist_family(
    name: str,
    root: str | Path,
    train: bool,
    download: bool = True,
    local_copies: list[str] | None = None,
) -> torch.Tensor:
    """Images of an MNIST-family set as a uint8 tensor (N, 28, 28), upright.

    ``name`` is one of :data:`MNIST_FAMILY`; ``local_copies`` are folders of the gzipped IDX files tried
    before any download.
    """
    if name not in MNIST_FAMILY:
        raise UserError(f"unknown MNIST-family data set '{name}': choose one of {sorted(MNIST_FAMILY)}")
    class_name, kwargs = MNIST_FAMILY[name]
    folders = list(local_copies or [])
    if name == "fashion_mnist":
        folders.append(str(DEBIAN_FASHION_MNIST))
    for folder in folders:
        if unpack_local_copy(folder, root, class_name):
            break
    dataset_cls = getattr(torchvision.datasets, class_name)
    try:
        dataset = dataset_cls(str(root), train=train, download=download, **kwargs)
    except Exception as error:  # torchvision raises RuntimeError / URLError / OSError here
        hint = "apt-get install dataset-fashion-mnist, or " if name == "fashion_mnist" else ""
        raise UserError(
            f"{class_name} is not in '{root}' and could not be downloaded ({type(error).__name__}): "
            f"{hint}put the gzipped IDX files in '{Path(root) / class_name / 'raw'}' or go online"
        ) from None
    images = dataset.data
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    if name == "emnist":  # EMNIST's IDX files store images transposed
        images = images.transpose(-1, -2).contiguous()
    return images
