"""Image + mask and photo-pair DataModules: splits from a committed file, named test sets, v2 transforms that
move both images of a pair, and one-line errors for bad pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from datamodules.io import DataError, save_image
from datamodules.pairs import ImageMaskDataModule, PhotoPairDataModule


def make_pairs(root: Path, stems: list[str], size: tuple[int, int] = (20, 30)) -> dict[str, str]:
    """Images whose red channel is their 0 / 255 mask (so alignment can be checked after transforms)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, stem in enumerate(stems):
        mask = torch.zeros(*size)
        mask[2 + i % 5 : 12, 4:20] = 1
        save_image(
            torch.stack([mask, torch.rand(*size) * 0.3, torch.zeros(*size)]), root / "images" / f"{stem}.png"
        )
        Image.fromarray((mask.numpy() * 255).astype("uint8")).save(root / "masks" / f"{stem}.png")
    return {"images": str(root / "images"), "masks": str(root / "masks"), "binary": True}


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, str]:
    spec = make_pairs(tmp_path / "portraits", [f"{i:03d}" for i in range(10)])
    split = {"train": [f"{i:03d}" for i in range(6)], "val": ["006", "007"], "test": ["008", "009"]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    return {**spec, "split_file": str(tmp_path / "split.json")}


def test_splits_come_from_the_split_file_and_batches_stack(folder, tmp_path):
    extra = make_pairs(tmp_path / "other", ["x", "y", "z"])
    dm = ImageMaskDataModule(
        train=[{**folder, "split": "train"}],
        val=[{**folder, "split": "val"}],
        test={"portraits": {**folder, "split": "test"}, "other": extra},
        train_transform=v2.Compose(
            [v2.RandomResizedCrop((16, 16), antialias=True), v2.RandomHorizontalFlip()]
        ),
        eval_transform=v2.Resize((16, 16), antialias=True),
        batch_size=3,
    )
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (6, 2)
    assert dm.test_set_names == ["portraits", "other"] and [len(s) for s in dm.test_set] == [2, 3]
    assert [dm.val_set[i]["name"] for i in range(2)] == ["006", "007"]
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == (3, 3, 16, 16) and batch["target"].shape == (3, 16, 16)
    assert batch["target"].dtype == torch.long and set(batch["target"].unique().tolist()) <= {0, 1}
    # the crop and flip moved image and mask together: the red channel still is the mask
    agree = ((batch["input"][:, 0] > 0.5).long() == batch["target"]).float().mean()
    assert agree > 0.9
    loaders = dm.test_dataloader()
    assert [len(loader.dataset) for loader in loaders] == [2, 3]


def test_sizes_cut_each_split(folder):
    dm = ImageMaskDataModule(
        train=[{**folder, "split": "train"}],
        val=[{**folder, "split": "val"}],
        test=[folder],
        train_size=4,
        test_size=3,
    )
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (4, 2, 3)


def test_photo_pairs_are_matched_by_name_and_move_together(tmp_path):
    for folder in ("input", "target"):
        for i in range(3):
            torch.manual_seed(i)
            image = torch.rand(3, 12, 18)
            save_image(image * (0.5 if folder == "input" else 1.0), tmp_path / folder / f"p{i}.png")
    spec = {"images": str(tmp_path / "input"), "targets": str(tmp_path / "target")}
    dm = PhotoPairDataModule(
        train=[spec], val=[spec], test=[spec], train_transform=v2.RandomCrop((8, 8)), batch_size=3
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["input"].shape == batch["target"].shape == (3, 3, 8, 8)
    # the input is half the target everywhere (up to 8-bit rounding): the crop took the same window
    torch.testing.assert_close(batch["input"], batch["target"] * 0.5, atol=2 / 255, rtol=0)


def test_bad_specs_and_pairs_fail_in_one_line(folder, tmp_path):
    with pytest.raises(DataError, match=r"split file '.*nope.json' does not exist"):
        spec = {**folder, "split_file": str(tmp_path / "nope.json")}
        ImageMaskDataModule(train=[spec], val=[spec], test=[spec]).setup("test")
    with pytest.raises(DataError, match=r"needs 'images' and 'masks'"):
        ImageMaskDataModule(train=[{"images": folder["images"]}], val=[], test=[]).setup("fit")
    (Path(folder["masks"]) / "003.png").unlink()
    with pytest.raises(DataError, match=r"image '.*003.png' has no mask"):
        ImageMaskDataModule(train=[folder], val=[folder], test=[folder]).setup("fit")


def test_cached_pairs_give_the_same_items_decode_once_and_keep_no_test_set(folder, monkeypatch):
    import datamodules.folders as folders

    def make(cache_mb: float) -> ImageMaskDataModule:
        dm = ImageMaskDataModule(
            train=[{**folder, "split": "train"}],
            val=[{**folder, "split": "val"}],
            test=[{**folder, "split": "test"}],
            train_transform=v2.RandomResizedCrop((16, 16), antialias=True),
            cache_mb=cache_mb,
        )
        dm.setup()
        return dm

    cached, uncached = make(1024), make(0)
    decoded: list[str] = []
    load_image, load_mask = folders.load_image_uint8, folders.load_mask
    monkeypatch.setattr(
        folders, "load_image_uint8", lambda path, *a: decoded.append(path.name) or load_image(path, *a)
    )
    monkeypatch.setattr(
        folders, "load_mask", lambda path, *a: decoded.append(path.name) or load_mask(path, *a)
    )
    for epoch in range(2):
        for split in ("train_set", "val_set", "test_set"):
            for i in range(len(getattr(cached, split))):
                torch.manual_seed(10 * epoch + i)
                one = getattr(cached, split)[i]
                torch.manual_seed(10 * epoch + i)
                other = getattr(uncached, split)[i]
                assert torch.equal(one["input"], other["input"]) and torch.equal(
                    one["target"], other["target"]
                )
                assert one["input"].dtype == torch.float32 and one["target"].dtype == torch.int64
    # uncached: 10 pairs × 2 files × 2 epochs; cached: train + val once (8 pairs), the 2 test pairs each epoch
    assert len(decoded) == 40 + 2 * 8 + 2 * 2 * 2
    assert len(cached.cache) == 2 * 8 and uncached.cache is None
    assert cached.cache.bytes == 8 * (3 + 1) * 20 * 30  # 8-bit images and masks
