"""Bad input gives a one-line error naming the file and what to do, and loses nothing already written.

The checks live in ``datamodules/io.py`` and ``datamodules/folders.py``, which every data set reads through.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

import datamodules.io
from datamodules.base import ImageFileDataset
from datamodules.folders import ImageFolder, ImageMaskFolder, PairedImageFolder
from datamodules.io import DataError, list_images, load_image, save_image
from framework.errors import UserError
from framework.runner import run


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def write_png(path: Path, size: tuple[int, int] = (24, 16), mode: str = "RGB", value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "RGBA": 4, "LA": 2}.get(mode)
    shape = (size[1], size[0], channels) if channels else (size[1], size[0])
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode).save(path)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def noisy_png(path: Path, size: int = 64) -> Path:
    """A PNG that does not compress to a few bytes, so cutting it leaves the header but not the pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


# -- missing / empty --------------------------------------------------------------------------------------
def test_missing_folder_and_file(tmp_path):
    with pytest.raises(DataError) as error:
        ImageFolder(tmp_path / "nope")
    assert f"image folder '{tmp_path / 'nope'}' does not exist" in one_line(error)
    with pytest.raises(DataError, match=r"image '.*gone.png' does not exist"):
        load_image(tmp_path / "gone.png")


def test_empty_folder_and_folder_without_images(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no images .*: add some"):
        list_images(tmp_path / "empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.txt").write_text("x")
    (other / "._photo.png").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork, not an image
    with pytest.raises(DataError, match="holds no images"):
        ImageFolder(other)


def test_missing_training_folder_through_run(make_cfg, tmp_path):
    with pytest.raises(UserError, match=r"image folder '.*/no_such_dir' does not exist"):
        run(make_cfg("task=super_resolution", f"data.train_dirs=[{tmp_path}/no_such_dir]"))


# -- corrupt / truncated ----------------------------------------------------------------------------------
def test_corrupt_and_truncated_images_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png at all")
    with pytest.raises(DataError) as error:
        ImageFolder(tmp_path)  # found when the folder is read, before any run
    assert "garbage.png' is not a readable image" in one_line(error)
    assert "replace or remove it" in str(error.value)

    cut = truncate(noisy_png(tmp_path / "cut" / "cut.png"))
    dataset = ImageFolder(cut.parent)  # the header is whole: the cut shows when the pixels are read
    with pytest.raises(DataError) as error:
        dataset[0]
    assert f"image '{cut}' is corrupt or truncated" in one_line(error)


def test_truncated_image_in_a_worker_is_still_one_line(tmp_path):
    noisy_png(tmp_path / "a.png")
    truncate(noisy_png(tmp_path / "b.png"))
    loader = DataLoader(ImageFolder(tmp_path), batch_size=1, num_workers=1)
    with pytest.raises(DataError) as error:
        list(loader)
    assert one_line(error).startswith(f"image '{tmp_path / 'b.png'}' is corrupt or truncated")


def test_predict_stops_at_a_truncated_image_and_keeps_what_it_wrote(make_cfg, tmp_path):
    images = tmp_path / "images"
    for i in range(3):
        save_image(torch.rand(1, 20, 20), images / f"a{i}.png")
    truncate(noisy_png(images / "z_broken.png"))
    out = tmp_path / "predictions"
    cfg = make_cfg(
        "stage=predict",
        "model=er",
        "model.iterations=2",
        "model.restarts=1",
        f"input={images}",
        f"output={out}",
    )
    with pytest.raises(UserError) as error:
        run(cfg)
    assert "z_broken.png' is corrupt or truncated" in one_line(error)
    assert sorted(p.name for p in out.glob("a*.png")) == [
        f"a{i}{s}.png" for i in range(3) for s in ("", "_vs_truth")
    ]
    assert not list(out.glob(".*.tmp"))


# -- gray / RGBA where RGB is expected ----------------------------------------------------------------------
def test_gray_and_rgba_are_converted_to_rgb_and_reported(tmp_path, caplog):
    write_png(tmp_path / "gray.png", mode="L", value=100)
    rgba = np.zeros((16, 24, 4), dtype=np.uint8)  # fully transparent: composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    write_png(tmp_path / "rgb.png", value=10)
    with caplog.at_level(logging.WARNING):
        dataset = ImageFolder(tmp_path, mode="RGB")
    assert "2 of 3 images are L, RGBA, not RGB" in caplog.text and "converted to RGB" in caplog.text
    items = {item["name"]: item["input"] for item in dataset}
    assert all(image.shape == (3, 16, 24) for image in items.values())
    assert torch.allclose(items["gray"], torch.full_like(items["gray"], 100 / 255))
    assert torch.equal(items["rgba"], torch.ones_like(items["rgba"]))
    assert load_image(tmp_path / "rgb.png", "L").shape == (1, 16, 24)


# -- image + mask pairs ---------------------------------------------------------------------------------
def test_mask_pairs_by_stem_with_joint_transforms(tmp_path):
    (tmp_path / "masks").mkdir()
    mask = np.zeros((24, 32), dtype=np.uint8)
    mask[:, :16] = 1  # left half is class 1
    for name in ("a", "b"):
        write_png(tmp_path / "images" / f"{name}.png", size=(32, 24))
        Image.fromarray(mask, "L").save(tmp_path / "masks" / f"{name}_mask.png")
    flip = v2.RandomHorizontalFlip(p=1.0)
    dataset = ImageMaskFolder(tmp_path / "images", tmp_path / "masks", mask_suffix="_mask", num_classes=2)
    item = dataset[0]
    assert item["name"] == "a" and item["target"].dtype == torch.int64 and item["target"].shape == (24, 32)
    flipped = ImageMaskFolder(tmp_path / "images", tmp_path / "masks", mask_suffix="_mask", transform=flip)[0]
    assert torch.equal(flipped["target"], item["target"].flip(-1))  # the mask moved with the image
    batch = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch["input"].shape == (2, 3, 24, 32) and batch["target"].shape == (2, 24, 32)


def test_mask_that_does_not_match_its_image(tmp_path):
    write_png(tmp_path / "images" / "a.png", size=(32, 24))
    write_png(tmp_path / "masks" / "a.png", size=(30, 24), mode="L")
    with pytest.raises(DataError) as error:
        ImageMaskFolder(tmp_path / "images", tmp_path / "masks")
    assert f"mask '{tmp_path / 'masks' / 'a.png'}' is 30×24 but its image" in one_line(error)
    assert "is 32×24" in str(error.value)


def test_mask_without_image_image_without_mask_and_colour_mask(tmp_path):
    write_png(tmp_path / "images" / "a.png")
    write_png(tmp_path / "images" / "b.png")
    write_png(tmp_path / "masks" / "a.png", mode="L")
    with pytest.raises(DataError, match=r"image '.*b.png' has no mask in .* add it or remove the image"):
        ImageMaskFolder(tmp_path / "images", tmp_path / "masks")
    write_png(tmp_path / "masks" / "b.png", mode="L")
    write_png(tmp_path / "masks" / "c.png", mode="L")
    with pytest.raises(DataError, match=r"mask '.*c.png' has no image"):
        ImageMaskFolder(tmp_path / "images", tmp_path / "masks")
    (tmp_path / "masks" / "c.png").unlink()
    write_png(tmp_path / "masks" / "b.png", mode="RGB")
    with pytest.raises(DataError, match=r"mask '.*b.png' is a RGB image, not a label mask"):
        ImageMaskFolder(tmp_path / "images", tmp_path / "masks")


def test_mask_values_are_checked_against_the_classes(tmp_path):
    write_png(tmp_path / "images" / "a.png")
    write_png(tmp_path / "masks" / "a.png", mode="L", value=7)
    with pytest.raises(
        DataError, match=r"mask '.*a.png' holds the value 7, not a class index below num_classes=3"
    ):
        ImageMaskFolder(tmp_path / "images", tmp_path / "masks", num_classes=3)[0]
    binary = ImageMaskFolder(tmp_path / "images", tmp_path / "masks", binary=True)[0]["target"]
    assert torch.equal(binary, torch.ones_like(binary))


# -- input + target pairs -------------------------------------------------------------------------------
def test_input_target_pairs(tmp_path):
    write_png(tmp_path / "in" / "x.png", size=(20, 10))
    write_png(tmp_path / "out" / "x.png", size=(20, 10), value=200)
    item = PairedImageFolder(tmp_path / "in", tmp_path / "out")[0]
    assert item["input"].shape == item["target"].shape == (3, 10, 20)
    write_png(tmp_path / "out" / "x.png", size=(40, 20))
    assert PairedImageFolder(tmp_path / "in", tmp_path / "out", scale=2)[0]["target"].shape == (3, 20, 40)
    with pytest.raises(DataError, match=r"target '.*x.png' is 40×20 but its input '.*x.png' is 20×10"):
        PairedImageFolder(tmp_path / "in", tmp_path / "out")


def test_two_files_with_one_name_are_refused(tmp_path):
    write_png(tmp_path / "in" / "x.png")
    write_png(tmp_path / "in" / "x.jpg")
    write_png(tmp_path / "out" / "x.png")
    with pytest.raises(DataError, match="have the same name: keep one"):
        PairedImageFolder(tmp_path / "in", tmp_path / "out")


# -- too large for memory -------------------------------------------------------------------------------
def test_image_too_large_is_refused_not_tiled(tmp_path, monkeypatch):
    big = write_png(tmp_path / "big.png", size=(300, 200))
    with pytest.raises(DataError) as error:
        ImageFolder(tmp_path, max_pixels=10_000)
    message = one_line(error)
    assert f"image '{big}' is 300×200 (0.1 Mpx), over the 0.01 Mpx limit: refused (not tiled)" in message
    with pytest.raises(DataError, match="refused"):
        load_image(big, max_pixels=10_000)
    monkeypatch.setattr(datamodules.io, "_available_memory", lambda: 1_000_000)  # 1 MB free
    with pytest.raises(DataError, match=r"needs ~0.0 GiB to load, more than half the 0.0 GiB free"):
        load_image(big)


def test_prediction_input_too_large_through_run(make_cfg, tmp_path, monkeypatch):
    write_png(tmp_path / "images" / "big.png", size=(300, 200))
    monkeypatch.setattr(datamodules.io, "MAX_PIXELS", 10_000)
    cfg = make_cfg("stage=predict", "model=er", "model.iterations=2", f"input={tmp_path / 'images'}")
    with pytest.raises(UserError, match=r"big.png' is 300×200 .* refused \(not tiled\)"):
        run(cfg)


def test_prediction_dataset_checks_headers_up_front(tmp_path):
    write_png(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"bad.png' is not a readable image"):
        ImageFileDataset(tmp_path)
