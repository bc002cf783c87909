"""What every DataModule shares: loaders, batch-level augmentation, and `stage=predict` on user images.

The training loader is resumable: its order is a function of (seed, epoch), each item is drawn with its
own seed (so random crops / flips inside a data set do not depend on what ran before, nor on the number of
workers), and Lightning stores its position in every checkpoint, so a fit resumed mid-epoch continues with
the very next batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.io import check_image_size, list_images, load_image, note_conversions, read_info
from framework.errors import UserError
from framework.rng import seeded_torch


class DictDataset(Dataset):
    """Items of equally long ``tensors`` as dicts, e.g. ``{"target": images[i]}``; uint8 → float in [0, 1]."""

    def __init__(self, **tensors: torch.Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(t) for k, t in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            key: value[index].float().div(255) if value.dtype == torch.uint8 else value[index]
            for key, value in self.tensors.items()
        }


class ImageFileDataset(Dataset):
    """Images from a file or folder as ``{key: image, "name": stem}``, optionally transformed.

    Every header is read up front: an unreadable file or an image too large to load stops the run before
    anything is computed, and images in another mode (gray, RGBA) are reported once and converted.
    """

    def __init__(
        self,
        path: str | Path,
        mode: str = "RGB",
        key: str = "input",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.files = list_images(path)
        infos = [read_info(file) for file in self.files]
        for info in infos:
            check_image_size(info, 1 if mode == "L" else 3, max_pixels)
        note_conversions(infos, mode)
        self.mode, self.key, self.transform, self.max_pixels = mode, key, transform, max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = load_image(self.files[index], self.mode, self.max_pixels)
        if self.transform is not None:
            image = self.transform(image)
        return {self.key: image, "name": self.files[index].stem}


class ResumableSampler(Sampler[tuple[int, int]]):
    """A shuffled epoch as ``(index, item seed)`` pairs, both functions of ``(seed, epoch)`` only.

    :meth:`resume` makes the next epoch start after the items already used, so a fit resumed mid-epoch
    sees exactly the batches it would have seen. Wrap the data set in :class:`SeededItems` to use the seeds.
    """

    def __init__(self, length: int, seed: int | None = None) -> None:
        self.length = length
        self.seed = int(torch.initial_seed() if seed is None else seed) % 2**63
        self.epoch = 0
        self._resume_at: tuple[int, int] | None = None  # (epoch, items to skip) for the next __iter__

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before every epoch."""
        self.epoch = epoch

    def resume(self, epoch: int, skip: int) -> None:
        """Start epoch ``epoch`` after its first ``skip`` items (applies once, to the next iteration)."""
        self.epoch, self._resume_at = epoch, (epoch, skip)

    def order(self, epoch: int) -> tuple[list[int], list[int]]:
        """Indices and item seeds of ``epoch``."""
        state = np.random.SeedSequence([self.seed, epoch]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))
        indices = torch.randperm(self.length, generator=generator)
        seeds = torch.randint(0, 2**62, (self.length,), generator=generator)
        return indices.tolist(), seeds.tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices, seeds = self.order(self.epoch)
        start = 0
        if self._resume_at is not None:
            epoch, skip = self._resume_at
            self._resume_at = None
            start = min(skip, self.length) if epoch == self.epoch else 0
        return iter(list(zip(indices[start:], seeds[start:], strict=True)))

    def __len__(self) -> int:
        return self.length  # the whole epoch, resumed or not: Lightning counts batches from it


class SeededItems(Dataset):
    """``dataset[index]`` drawn under its own torch seed, for the ``(index, seed)`` keys of
    :class:`ResumableSampler`; the global random stream is neither used nor changed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        """A batch's items: through the data set's own ``seeded_items(keys)`` where it has one (it draws
        from the seeds itself, a batch at once), else item by item under each seed."""
        seeded_items = getattr(self.dataset, "seeded_items", None)
        if seeded_items is not None:
            return seeded_items(keys)
        items = []
        for index, seed in keys:
            with seeded_torch(seed):
                items.append(self.dataset[index])
        return items


class ResumableDataLoader(DataLoader):
    """A DataLoader that can say where training is in its epoch (``state_dict``) and start there
    (``load_state_dict``).

    ``progress`` returns (batches of the current epoch that training has consumed, whether the epoch is
    over); the DataModule points it at the Trainer's counters, since the loader itself runs ahead by the
    prefetched batches. Lightning also stores this state with its loops (the loader is "stateful" to it),
    but does not load it back when ``configure_optimizers`` asked for ``trainer.estimated_stepping_batches``
    (Lightning issue #20550), so :class:`ImageDataModule` keeps and restores it itself.
    """

    progress: Callable[[], tuple[int, bool]] | None = None

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        if not isinstance(sampler, ResumableSampler):  # e.g. wrapped for DDP: epoch-level resume only
            return {}
        batches, finished = self.progress() if self.progress is not None else (0, False)
        epoch = sampler.epoch + 1 if finished else sampler.epoch  # a finished epoch resumes at the next
        return {
            "seed": sampler.seed,
            "epoch": epoch,
            "batches": 0 if finished else batches,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sampler = self.sampler
        if not state_dict or not isinstance(sampler, ResumableSampler):
            return
        sampler.seed = int(state_dict["seed"])
        sampler.resume(int(state_dict["epoch"]), int(state_dict["batches"]) * int(state_dict["batch_size"]))


def evaluation_sampler(dataset: Dataset) -> Sampler | None:
    """Under DDP, every image of a validation / test set exactly once across the processes (rank r takes
    items r, r + world, ...), so data-set metrics equal one process's; Lightning's default DistributedSampler
    pads each process's share with repeated images. None (a plain sequential loader) without DDP."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    return UnrepeatedDistributedSampler(dataset, shuffle=False)  # type: ignore[arg-type]


class ImageDataModule(LightningDataModule):
    """Base DataModule: subclasses build ``self.train_set`` / ``val_set`` / ``test_set`` in ``setup``.

    ``augmentation`` maps the training batch dict to an augmented one, on the device, during training only
    (batch-level, e.g. :class:`~operators.batch_augmentation.BatchAugmentation`, which names the entries
    it moves together: an image and its mask, a photo pair, PR's clean targets), so it costs no worker time;
    ``torch.nn.Identity`` (``augmentation=none``) leaves the batch as it is. ``predict_input`` is a file or
    folder of the user's images for ``stage=predict``; :meth:`predict_dataset` says how a task reads them.
    """

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        augmentation: nn.Module | None = None,
        predict_input: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be a positive integer")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.augmentation = augmentation
        self.predict_input = predict_input
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._train_loader: DataLoader | None = None
        self._shuffle_seed: int | None = None  # fixed at the first training loader, kept in checkpoints
        self._resume_loader: dict[str, Any] | None = None  # loader state of the checkpoint being resumed

    # -- loaders ---------------------------------------------------------------------------------------
    def _loader(self, dataset: Dataset | None, shuffle: bool, batch_size: int) -> DataLoader:
        """A shuffled loader is a :class:`ResumableDataLoader`; an unshuffled one a plain DataLoader."""
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() did not build this split")
        if not shuffle:
            return DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=evaluation_sampler(dataset),
                num_workers=self.num_workers,
                persistent_workers=self.num_workers > 0,
            )
        sampler = ResumableSampler(len(dataset), self._shuffle_seed)  # type: ignore[arg-type]
        self._shuffle_seed = sampler.seed
        return ResumableDataLoader(
            SeededItems(dataset),
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=len(dataset) > batch_size,  # type: ignore[arg-type]
            generator=torch.Generator().manual_seed(sampler.seed),  # worker seeds, not the global stream
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader(self.train_set, shuffle=True, batch_size=self.batch_size)
        trainer = self.trainer
        if trainer is not None and isinstance(loader, ResumableDataLoader):
            fit_loop = trainer.fit_loop

            def progress() -> tuple[int, bool]:
                batches = fit_loop.epoch_loop.batch_progress.current.processed
                return batches, batches >= trainer.num_training_batches

            loader.progress = progress
            # Lightning may make an iterator before its set_epoch() (or before restoring its counters)
            loader.sampler.set_epoch(fit_loop.epoch_progress.current.processed)  # type: ignore[attr-defined]
            if self._resume_loader:
                loader.load_state_dict(self._resume_loader)
                self._resume_loader = None  # once: a loader rebuilt later starts its own epoch
        self._train_loader = loader
        return loader

    # -- resuming: the checkpoint keeps where training was in its epoch ----------------------------------
    def state_dict(self) -> dict[str, Any]:
        loader = self._train_loader
        return {"train_loader": loader.state_dict()} if isinstance(loader, ResumableDataLoader) else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called by Lightning before any loader is built; :meth:`train_dataloader` applies it."""
        self._resume_loader = state_dict.get("train_loader") or None
        if self._resume_loader:
            self._shuffle_seed = int(self._resume_loader["seed"])

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, batch_size=self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        if not self.predict_input:
            raise UserError(
                "stage=predict needs input=<image file or folder> (and optionally output=<folder>)"
            )
        return DataLoader(
            self.predict_dataset(self.predict_input), batch_size=1, num_workers=self.num_workers
        )

    def predict_dataset(self, path: str) -> Dataset:
        """The user's images for ``stage=predict``; subclasses resize / convert as their task needs."""
        return ImageFileDataset(path, mode="RGB", key="input")

    # -- on the device: what a batch becomes before the step ----------------------------------------------
    def device_batch(self, batch: Any, training: bool) -> Any:
        """The batch the module steps on, made on the device from the loader's: the training augmentation
        (``training`` only). A subclass whose items are finished on the device (auto-correction's
        degradations) adds its part; a bare loop calls this too, so both step on the same batches."""
        if training and self.augmentation is not None:
            return self.augmentation(batch)
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = self.trainer
        return self.device_batch(batch, training=trainer is not None and trainer.training)
