"""Face data (datamodules/faces.py): the EG1800 face stand-in on a few images, split file, caches, CelebA."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from PIL import Image

import datamodules.faces as faces
from datamodules.faces import (
    EG1800_SPLIT_FILE,
    CelebADataModule,
    CelebATransform,
    EG1800FacesDataModule,
    face_box_from_mask,
    read_split,
)
from framework.errors import UserError
from tests.conftest import compose_config

LIMIT = 3  # images per split: 9 crops, a couple of seconds


@pytest.fixture(scope="module")
def eg1800_dir(tmp_path_factory) -> Path:
    cfg = compose_config(["data=eg1800_faces"], tmp_path_factory.mktemp("cfg"))
    folder = Path(cfg.data.source_dir)
    if not (folder / "images").is_dir():
        pytest.skip(f"no EG1800 folder at {folder}")
    return folder


@pytest.fixture(scope="module")
def built(eg1800_dir, tmp_path_factory) -> tuple[EG1800FacesDataModule, Path]:
    """The config's DataModule on LIMIT images per split, cache in a fresh data dir."""
    root = tmp_path_factory.mktemp("data")
    cfg = compose_config(
        ["data=eg1800_faces", f"data.limit={LIMIT}", f"paths.data_dir={root}"], tmp_path_factory.mktemp("o")
    )
    dm = hydra.utils.instantiate(cfg.data)
    assert isinstance(dm, EG1800FacesDataModule)
    dm.setup()
    return dm, root


def test_split_file_is_committed_disjoint_and_complete(eg1800_dir):
    split = read_split(EG1800_SPLIT_FILE)
    assert [len(split[name]) for name in ("train", "val", "test")] == [1141, 100, 100]
    stems = [set(split[name]) for name in ("train", "val", "test")]
    assert not (stems[0] & stems[1] or stems[0] & stems[2] or stems[1] & stems[2])
    assert set().union(*stems) == {p.stem for p in (eg1800_dir / "images").glob("*.jpg")}
    assert "not CelebA" in EG1800_SPLIT_FILE.read_text()


def test_eg1800_crops_are_64x64_in_unit_range(built):
    dm, _ = built
    assert dm.pad == 16 and dm.image_size == 64 and "not CelebA" in dm.dataset_label
    for dataset in (dm.train_set, dm.val_set, dm.test_set):
        assert len(dataset) == LIMIT
        item = dataset[0]["target"]
        assert item.shape == (1, 64, 64) and item.dtype == torch.float32
        assert 0 <= item.min() < item.max() <= 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["target"].shape == (LIMIT, 1, 64, 64)


def test_eg1800_uses_the_split_file_stems(built):
    dm, _ = built
    cache = torch.load(dm.cache_file, weights_only=True)
    split = read_split(EG1800_SPLIT_FILE)
    expected = {stem for name in ("train", "val", "test") for stem in split[name][:LIMIT]}
    assert set(cache["stems"]) == expected
    index = {stem: i for i, stem in enumerate(cache["stems"])}
    val = cache["images"][[index[s] for s in split["val"][:LIMIT]]]
    assert torch.equal(dm.val_set.tensors["target"], val)
    assert set(dm.fallback_stems) <= expected


def test_eg1800_cache_is_reused_and_extended(built, monkeypatch):
    dm, root = built
    assert dm.cache_file == root / "eg1800_faces_64.pt"
    calls: list[Path] = []
    real_crop = faces.eg1800_face_crop

    def counting_crop(path: Path, *args, **kwargs):
        calls.append(path)
        return real_crop(path, *args, **kwargs)

    monkeypatch.setattr(faces, "eg1800_face_crop", counting_crop)
    again = EG1800FacesDataModule(source_dir=str(dm.source_dir), root=str(root), limit=LIMIT)
    again.setup()
    assert calls == []  # everything read from the cache
    assert torch.equal(again.train_set.tensors["target"], dm.train_set.tensors["target"])
    more = EG1800FacesDataModule(source_dir=str(dm.source_dir), root=str(root), limit=LIMIT + 1)
    more.setup("test")
    assert len(calls) == 1  # only the missing test image is built
    assert len(more.test_set) == LIMIT + 1


def test_eg1800_missing_folder_is_a_user_error(tmp_path):
    dm = EG1800FacesDataModule(source_dir=str(tmp_path / "nowhere"), root=str(tmp_path), limit=1)
    with pytest.raises(UserError, match=r"data\.source_dir"):
        dm.setup("test")


def test_mask_fallback_centres_on_the_head():
    mask = np.zeros((400, 300), dtype=np.uint8)
    yy, xx = np.mgrid[:400, :300]
    mask[((xx - 180) / 60) ** 2 + ((yy - 150) / 80) ** 2 <= 1] = 255  # head centred at (180, 150)
    mask[250:, 40:300] = 255  # shoulders
    mask[40:70, 178:182] = 255  # a thin hair pin above the head
    x, y, w, h = face_box_from_mask(mask)
    assert abs(x + w / 2 - 180) < 10 and 90 < y + h / 2 < 180 and 80 < w < 130
    assert face_box_from_mask(np.zeros_like(mask)) is None


def test_celeba_offline_is_one_line_naming_the_stand_in(tmp_path):
    dm = CelebADataModule(root=str(tmp_path), download=False)
    with pytest.raises(UserError) as error:
        dm.setup("fit")
    message = str(error.value)
    assert "\n" not in message and "data=eg1800_faces" in message and "celeba" in message


def test_celeba_reads_its_cache(tmp_path):
    sizes = {"train": 5, "val": 4, "test": 3}
    for split, n in sizes.items():
        images = torch.full((n, 1, 64, 64), 128, dtype=torch.uint8)
        torch.save(images, tmp_path / f"celeba_64_gray_{split}.pt")
    dm = CelebADataModule(root=str(tmp_path), val_size=2, download=False)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (5, 2, 3)
    assert dm.train_set[0]["target"].shape == (1, 64, 64)


def test_celeba_transform_centre_crops_then_resizes():
    image = np.zeros((218, 178, 3), dtype=np.uint8)  # CelebA's aligned size, bright 120×120 centre
    image[49:169, 29:149] = 200
    out = CelebATransform(crop_size=120, size=64)(Image.fromarray(image))
    assert out.shape == (1, 64, 64) and out.dtype == torch.uint8
    assert out.min() == out.max() == 200


def test_predict_dataset_gives_gray_squares(tmp_path):
    Image.fromarray(np.full((400, 300, 3), 90, dtype=np.uint8)).save(tmp_path / "portrait.png")
    item = EG1800FacesDataModule(root=str(tmp_path)).predict_dataset(str(tmp_path))[0]
    assert item["target"].shape == (1, 64, 64) and item["name"] == "portrait"
