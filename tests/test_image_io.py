"""datamodules.io's 8-bit reader and PNG writer: the uint8 levels are load_image's, and a faster PNG level
stores the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from callbacks.prediction_writer import PredictionWriter
from datamodules.io import DecodedCache, load_image, load_image_uint8, save_image


@pytest.fixture
def photo(tmp_path):
    y, x = np.mgrid[0:30, 0:50]  # smooth ramps and a little noise: compressible, so the levels differ
    noise = np.random.default_rng(0).integers(0, 8, size=(30, 50))
    pixels = np.stack([x * 5, y * 8, (x + y + noise) * 3], axis=-1).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_uint8_levels_are_load_images_values(photo):
    path, pixels = photo
    levels = load_image_uint8(path)
    assert levels.dtype == torch.uint8 and levels.shape == (3, 30, 50)
    assert torch.equal(levels, torch.from_numpy(pixels).permute(2, 0, 1))
    assert torch.equal(load_image(path), levels.float() / 255)
    assert torch.equal(
        load_image_uint8(path, "L")[0], torch.from_numpy(np.asarray(Image.open(path).convert("L")))
    )


@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_every_png_level_stores_the_same_pixels(photo, tmp_path, level):
    path, pixels = photo
    written = save_image(load_image(path), tmp_path / f"out{level}.png", compress_level=level)
    assert np.array_equal(np.asarray(Image.open(written)), pixels)


def test_the_prediction_writer_writes_at_its_level(photo, tmp_path):
    path, pixels = photo
    image = load_image(path)[None]
    sizes = {}
    for level in (1, 9):
        writer = PredictionWriter(str(tmp_path / f"level{level}"), compress_level=level)
        writer.write_on_batch_end(None, None, {"name": ["p"], "images": {"_x": image}}, None, None, 0)  # type: ignore[arg-type]
        written = tmp_path / f"level{level}" / "p_x.png"
        assert np.array_equal(np.asarray(Image.open(written)), pixels)
        sizes[level] = written.stat().st_size
    assert sizes[1] != sizes[9]  # the level reached the encoder


def test_background_writes_are_all_done_when_predict_ends(photo, tmp_path):
    path, pixels = photo
    writer = PredictionWriter(str(tmp_path / "out"), writer_threads=2)
    writer.on_predict_start(None, None)  # type: ignore[arg-type]
    image = load_image(path)[None]
    for batch in range(6):
        prediction = {"name": [f"p{batch}"], "images": {"_a": image, "_b": 1 - image}}
        writer.write_on_batch_end(None, None, prediction, None, None, batch)  # type: ignore[arg-type]
    writer.on_predict_end(None, None)  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"p{b}{s}.png" for b in range(6) for s in ("_a", "_b")
    )
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "p5_a.png")), pixels)


def test_a_failed_background_write_is_raised(photo, tmp_path):
    """At the next batch if it failed by then, else when predict ends."""
    path, _ = photo
    (tmp_path / "taken").write_text("a file where the output folder should be")
    writer = PredictionWriter(str(tmp_path / "taken"), writer_threads=1)
    writer.on_predict_start(None, None)  # type: ignore[arg-type]
    prediction = {"name": ["p"], "images": {"": load_image(path)[None]}}
    with pytest.raises(FileExistsError):
        for batch in range(3):
            prediction["name"] = [f"p{batch}"]
            writer.write_on_batch_end(None, None, prediction, None, None, batch)  # type: ignore[arg-type]
        writer.on_predict_end(None, None)  # type: ignore[arg-type]


def test_the_decoded_cache_keeps_images_while_its_budget_lasts():
    cache = DecodedCache(max_mb=2 * 3 * 64 * 64 / 2**20)  # room for two 3×64×64 uint8 images
    made: list[int] = []

    def make(i: int) -> torch.Tensor:
        made.append(i)
        return torch.full((3, 64, 64), i, dtype=torch.uint8)

    for _ in range(2):  # two epochs over three images
        got = [cache.get(i, lambda i=i: make(i)) for i in range(3)]
        assert [int(image[0, 0, 0]) for image in got] == [0, 1, 2]
    assert made == [0, 1, 2, 2]  # the first two kept, the third made again in the second epoch
    assert len(cache) == 2 and cache.bytes == 2 * 3 * 64 * 64
    nothing_kept = DecodedCache(max_mb=0)
    nothing_kept.get("x", lambda: make(9))
    assert len(nothing_kept) == 0 and made[-1] == 9
