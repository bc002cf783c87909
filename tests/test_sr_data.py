"""The super-resolution training crops (datamodules/super_resolution.py): numpy views, seeded, dihedral."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.base import SeededItems
from datamodules.io import list_images
from datamodules.super_resolution import (
    SR_SPLIT_FILE,
    RandomCropDataset,
    SuperResolutionDataModule,
    make_holdout,
    read_holdout,
    split_training_folders,
)
from framework.errors import UserError
from framework.rng import seeded_torch, uniforms_from_seeds


def _images() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in [(40, 50), (33, 61)]]


def _dihedral(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips / transposes of a square (C, S, S) crop."""
    out = []
    for t in (x, x.transpose(-1, -2)):
        out += [t, t.flip(-1), t.flip(-2), t.flip(-1).flip(-2)]
    return out


def _is_dihedral_crop(crop: torch.Tensor, images: list[torch.Tensor]) -> bool:
    size = crop.shape[-1]
    variants = _dihedral(crop)
    for image in images:
        windows = image.unfold(1, size, 1).unfold(2, size, 1)  # (C, H', W', S, S)
        for v in variants:
            if (windows == v[:, None, None]).all(dim=(0, 3, 4)).any():
                return True
    return False


def test_crops_are_seeded_dihedral_crops_of_the_images() -> None:
    images = _images()
    dataset = RandomCropDataset(images, crop_size=24, length=7)
    assert len(dataset) == 7
    crops = []
    for seed in range(12):
        with seeded_torch(seed):
            item = dataset[0]["target"]
        with seeded_torch(seed):
            assert torch.equal(dataset[5]["target"], item)  # the seed decides, not the index or the past
        assert item.shape == (3, 24, 24) and item.dtype == torch.float32
        assert item.min() >= 0.0 and item.max() <= 1.0
        crop = item.mul(255).round().to(torch.uint8)
        assert _is_dihedral_crop(crop, images)
        crops.append(crop)
    assert len({tuple(c.flatten().tolist()) for c in crops}) > 6  # different seeds, different crops


def test_all_eight_dihedral_variants_are_drawn() -> None:
    image = torch.arange(9, dtype=torch.uint8).view(1, 3, 3).expand(3, 3, 3).contiguous()
    dataset = RandomCropDataset([image], crop_size=3, length=1)
    seen = set()
    for seed in range(100):
        with seeded_torch(seed):
            seen.add(tuple(dataset[0]["target"][0].mul(255).round().int().flatten().tolist()))
    expected = {tuple(v[0].int().flatten().tolist()) for v in _dihedral(image)}
    assert seen == expected and len(seen) == 8


def test_uniforms_are_splitmix64_of_the_seed() -> None:
    # SplitMix64's first two outputs for seed 0 (Vigna's reference splitmix64.c), top 53 bits
    expected = [0xE220A8397B1DCDAF >> 11, 0x6E789E6AA1B965F4 >> 11]
    assert (uniforms_from_seeds([0], 2)[0] * 2.0**53).tolist() == expected
    draws = uniforms_from_seeds(list(range(50_000)), 6)
    assert draws.shape == (50_000, 6) and draws.min() >= 0.0 and draws.max() < 1.0
    counts = np.histogram(draws, bins=10, range=(0.0, 1.0))[0]
    assert np.abs(counts / draws.size - 0.1).max() < 0.005
    assert np.abs(np.corrcoef(draws.T) - np.eye(6)).max() < 0.02  # the six draws of a seed are independent


def test_a_batch_of_seeded_items_equals_the_items_one_by_one() -> None:
    dataset = SeededItems(RandomCropDataset(_images(), crop_size=16, length=9))
    keys = [(index, 1000 + 7 * index) for index in range(9)]
    batch = dataset.__getitems__(keys)
    for key, item in zip(keys, batch, strict=True):
        assert torch.equal(dataset[key]["target"], item["target"])  # an item depends on its seed only
    batch_sampler = torch.utils.data.BatchSampler(keys, batch_size=9, drop_last=False)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler)
    assert torch.equal(next(iter(loader))["target"], torch.stack([item["target"] for item in batch]))


def test_dataset_pickles_for_spawned_workers() -> None:
    dataset = pickle.loads(pickle.dumps(RandomCropDataset(_images(), crop_size=16, length=2)))
    with seeded_torch(3):
        assert dataset[0]["target"].shape == (3, 16, 16)


def test_crop_larger_than_an_image_names_the_setting() -> None:
    with pytest.raises(UserError, match=r"data\.crop_size=34"):
        RandomCropDataset(_images(), crop_size=34, length=1)


@pytest.mark.parametrize("data", ["sr_t91", "sr_t91_bsd200"])
def test_validation_images_are_held_out_of_training_and_disjoint_from_every_test_set(data: str) -> None:
    hydra = pytest.importorskip("hydra")
    from tests.conftest import compose_config

    cfg = compose_config(["task=super_resolution", f"data={data}"])
    datamodule = hydra.utils.instantiate(cfg.data, augmentation=None)
    datamodule.setup("fit")
    datamodule.setup("test")
    val_paths = {p.resolve() for p in datamodule.val_paths}
    assert len(val_paths) == len(datamodule.val_set) == (10 if data == "sr_t91" else 30)
    train_paths, _ = split_training_folders(datamodule.train_dirs, read_holdout(SR_SPLIT_FILE))
    assert not val_paths & {p.resolve() for p in train_paths}  # held out of training
    assert len(train_paths) + len(val_paths) == sum(len(list_images(d)) for d in datamodule.train_dirs)
    test_paths = {p.resolve() for folder in datamodule.test_dirs.values() for p in list_images(folder)}
    assert not val_paths & test_paths
    # by content too: no validation image is a test image (any size, either orientation)
    test_images = [item["target"] for dataset in datamodule.test_set for item in dataset]
    for item in datamodule.val_set:
        for image in test_images:
            assert image.shape != item["target"].shape or not torch.equal(image, item["target"])


def test_a_test_folder_cannot_validate_and_the_split_file_is_the_seeded_one(tmp_path: Path) -> None:
    from tests.conftest import compose_config

    sr = Path(compose_config(["task=super_resolution"]).paths.shared_data_dir) / "sr"
    holdout = make_holdout([sr / "T91", sr / "BSD200"], {"T91": 10, "BSD200": 20}, seed=0)
    assert holdout == read_holdout(SR_SPLIT_FILE)  # the committed file is the seeded draw
    with pytest.raises(UserError, match="test folder"):
        SuperResolutionDataModule([str(sr / "T91")], {"Set5": str(sr / "Set5")}, val_dirs=[str(sr / "Set5")])
    bad = tmp_path / "split.json"
    bad.write_text(json.dumps({"holdout": {"T91": ["nope.png"]}}))
    dm = SuperResolutionDataModule([str(sr / "T91")], {"Set5": str(sr / "Set5")}, val_split_file=str(bad))
    with pytest.raises(UserError, match=r"nope\.png"):
        dm.setup("fit")
