"""Image + mask folders whose evaluation splits may mix image sizes (a test set of photos as they come).

:class:`~datamodules.pairs.ImageMaskDataModule` stacks a split's items into batches, so a split of varied
sizes needs a transform that makes them one size, which would score the masks at another resolution than
their own. :class:`SegmentationDataModule` reads the sizes from the files' headers instead: an evaluation
split (validation, a test set) whose images are not all one size, and that no ``eval_transform`` changes, is
loaded one image at a time, so each IoU is measured at its own mask's resolution. Training is unchanged (its
transform crops to one size).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from datamodules.io import CacheMB, read_info
from datamodules.pairs import FolderSpec, ImageMaskDataModule, Transform


def item_sizes(dataset: Dataset, indices: Sequence[int] | None = None) -> list[tuple[int, int]] | None:
    """(height, width) of the images of ``dataset``'s items (``indices``, or all), from the headers of the
    folder data sets under it (through ``Subset`` / ``ConcatDataset``); None when a part is not a folder of
    pairs. Only the headers of the items asked for are read."""
    if indices is None:
        indices = range(len(dataset))  # type: ignore[arg-type]
    if isinstance(dataset, Subset):
        return item_sizes(dataset.dataset, [dataset.indices[i] for i in indices])
    if isinstance(dataset, ConcatDataset):
        sizes = []
        for index in indices:
            part = bisect.bisect_right(dataset.cumulative_sizes, index)
            start = dataset.cumulative_sizes[part - 1] if part else 0
            size = item_sizes(dataset.datasets[part], [index - start])
            if size is None:
                return None
            sizes += size
        return sizes
    pairs = getattr(dataset, "pairs", None)
    return None if pairs is None else [read_info(pairs[i][1]).size for i in indices]


class SegmentationDataModule(ImageMaskDataModule):
    """:class:`~datamodules.pairs.ImageMaskDataModule` whose evaluation loaders take one image at a time for
    a split of mixed sizes (see the module docstring); ``dataset`` names the data in a run's results."""

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
        dataset: str = "",
        cache_mb: CacheMB = 1024.0,
    ) -> None:
        super().__init__(
            train,
            val,
            test,
            train_transform,
            eval_transform,
            train_size,
            val_size,
            test_size,
            batch_size,
            eval_batch_size,
            num_workers,
            augmentation,
            predict_input,
            cache_mb,
        )
        self.dataset_label = dataset or None

    def _loader(self, dataset: Dataset | None, shuffle: bool, batch_size: int) -> DataLoader:
        if not shuffle and batch_size > 1 and self.eval_transform is None and dataset is not None:
            sizes = item_sizes(dataset)
            if sizes is not None and len(set(sizes)) > 1:
                batch_size = 1
        return super()._loader(dataset, shuffle, batch_size)
