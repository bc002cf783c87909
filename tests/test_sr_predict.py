"""`stage=predict` of super-resolution through `framework.runner.run`: the user's images upscaled, large ones
tile by tile (module.predict_tile) with the same result as whole-image processing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from datamodules.io import load_image, save_image
from framework.runner import run

SIZES = {"small": (20, 30), "odd": (25, 17)}  # LR (H, W)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    generator = torch.Generator().manual_seed(0)
    for name, (height, width) in SIZES.items():
        save_image(torch.rand(3, height, width, generator=generator), folder / f"{name}.png")
    return folder


def predict(make_cfg, photos: Path, out: Path, *overrides: str) -> dict[str, torch.Tensor]:
    run(
        make_cfg(
            "task=super_resolution",
            "stage=predict",
            f"input={photos}",
            f"output={out}",
            *overrides,
            output_dir=out.parent / f"{out.name}_run",
        )
    )
    return {name: load_image(out / f"{name}.png") for name in SIZES}


def test_bicubic_predict_writes_upscaled_pngs(make_cfg, photos, tmp_path):
    images = predict(make_cfg, photos, tmp_path / "out", "model=bicubic", "data.scale=4")
    for name, (height, width) in SIZES.items():
        assert images[name].shape == (3, 4 * height, 4 * width)
        side_by_side = load_image(tmp_path / "out" / f"{name}_bicubic_vs_ours.png")
        assert side_by_side.shape == (3, 4 * height, 8 * width)
    tiled = predict(
        make_cfg, photos, tmp_path / "tiled", "model=bicubic", "data.scale=4", "module.predict_tile=8"
    )
    for name in SIZES:
        torch.testing.assert_close(tiled[name], images[name], atol=1 / 255 + 1e-6, rtol=0)


def test_fitted_espcn_predicts_the_same_through_tiles(make_cfg, photos, tmp_path):
    fit_dir = tmp_path / "fit"
    run(
        make_cfg(
            "task=super_resolution",
            "data.samples_per_epoch=8",
            "data.train_dirs=[${paths.shared_data_dir}/sr/Set5]",  # small folders: a fast test
            "data.val_dirs=[${paths.shared_data_dir}/sr/Set14]",  # (never a test folder)
            "~data.test_dirs.Set14",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "callbacks.early_stopping=null",
            "callbacks.image_logger=null",
            output_dir=fit_dir,
        )
    )
    ckpt = json.loads((fit_dir / "metrics.json").read_text())["checkpoints"]["best"]
    whole = predict(make_cfg, photos, tmp_path / "whole", f"ckpt_path={ckpt}", "module.predict_tile=null")
    tiled = predict(make_cfg, photos, tmp_path / "tiled", f"ckpt_path={ckpt}", "module.predict_tile=8")
    for name, (height, width) in SIZES.items():
        assert whole[name].shape == tiled[name].shape == (3, 3 * height, 3 * width)
        # the same float output up to ~1e-6, so the 8-bit PNGs differ by at most one level, almost nowhere
        difference = (tiled[name] - whole[name]).abs()
        assert difference.max() <= 1 / 255 + 1e-6 and (difference > 0).float().mean() < 1e-3
