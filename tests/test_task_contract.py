"""The task contract: a task is only its own files. A toy task written entirely in a temporary folder (its
configs reached through Hydra's search path, its LightningModule and DataModule in its own module) runs
`fit`, `test` and `predict` through `run.py` with no edit to any file of this repository."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from datamodules.io import load_image, save_image
from tests.conftest import run_cli

TOY_MODULE = '''
"""A toy task: undo a halving of the brightness. Everything a task owns, in one file."""
from typing import Any

import torch
import torchmetrics
from torch import nn

from datamodules.base import DictDataset, ImageDataModule
from lightning_modules.base import ImagingModule


class ToyNet(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ToyModule(ImagingModule):
    metric_names = ("mae",)

    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        target = torch.rand(batch_size, 3, 8, 8)
        return {"input": target / 2, "target": target}

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mae": (pred - target).abs().flatten(1).mean(1)}

    def dataset_metrics(self) -> dict[str, torchmetrics.Metric]:
        return {"mse_dataset": torchmetrics.MeanSquaredError()}


class ToyData(ImageDataModule):
    def __init__(self, size: int = 64, batch_size: int = 16, augmentation: nn.Module | None = None,
                 predict_input: str | None = None) -> None:
        super().__init__(batch_size, augmentation=augmentation, predict_input=predict_input)
        self.size = size

    def setup(self, stage: str | None = None) -> None:
        generator = torch.Generator().manual_seed(0)
        target = torch.rand(self.size, 3, 8, 8, generator=generator)
        self.train_set = self.val_set = self.test_set = DictDataset(input=target / 2, target=target)
'''

CONFIGS = {
    "task/toy.yaml": """
        # @package _global_
        defaults:
          - override /data: toy
          - override /model: toy_net
          - override /loss: toy_l1
          - override /augmentation: none
        task_name: toy
        monitor: {metric: val/mae, mode: min}
        optimized_metric: val/mae
        module:
          _target_: toy_task.ToyModule
          task_name: ${task_name}
          net: ${model}
          loss: ${loss}
          optimizer: {_target_: torch.optim.Adam, _partial_: true, lr: 0.05}
        trainer: {max_epochs: 3}
        smoke:
          overrides: [trainer.max_epochs=1]
          configs: {model: {toy_net: []}, loss: {toy_l1: []}, data: {toy: []}}
    """,
    "model/toy_net.yaml": "_target_: toy_task.ToyNet\nchannels: 3\n",
    "loss/toy_l1.yaml": "_target_: torch.nn.L1Loss\n",
    "data/toy.yaml": "_target_: toy_task.ToyData\nsize: 64\nbatch_size: 16\naugmentation: ${augmentation}\n",
}


@pytest.fixture
def toy_task(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """The toy task's folder; returns the command-line arguments and environment that reach it."""
    (tmp_path / "toy" / "toy_task.py").parent.mkdir(parents=True)
    (tmp_path / "toy" / "toy_task.py").write_text(TOY_MODULE)
    for name, text in CONFIGS.items():
        path = tmp_path / "toy" / "conf" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    args = [
        f"hydra.searchpath=[file://{tmp_path / 'toy' / 'conf'}]",
        "task=toy",
        "logger=csv",
        "callbacks.rich_progress_bar=null",
    ]
    return args, {"PYTHONPATH": str(tmp_path / "toy")}


def test_a_task_in_its_own_folder_fits_tests_and_predicts(toy_task, tmp_path):
    args, env = toy_task
    fit_dir = tmp_path / "fit"
    result = run_cli(*args, f"hydra.run.dir={fit_dir}", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    fitted = json.loads((fit_dir / "metrics.json").read_text())
    metrics = fitted["metrics"]
    assert fitted["task"] == "toy" and fitted["epochs"] == 3
    assert metrics["test/mae"] < metrics["train/loss"] * 2  # trained, tested
    assert {"val/mae", "val/mse_dataset", "test/mae", "test/mse_dataset"} <= set(metrics)
    assert (fit_dir / "images" / "test.png").is_file()

    best = fitted["checkpoints"]["best"]
    test_dir = tmp_path / "test"
    result = run_cli(*args, "stage=test", f"ckpt_path={best}", f"hydra.run.dir={test_dir}", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    tested = json.loads((test_dir / "metrics.json").read_text())["metrics"]
    assert tested["test/mae"] == pytest.approx(metrics["test/mae"], rel=1e-5)
    assert tested["test/mse_dataset"] == pytest.approx(metrics["test/mse_dataset"], rel=1e-5)

    photos, out = tmp_path / "photos", tmp_path / "out"
    save_image(torch.full((3, 5, 7), 0.25), photos / "dim.png")
    result = run_cli(
        *args,
        "stage=predict",
        f"ckpt_path={best}",
        f"input={photos}",
        f"output={out}",
        f"hydra.run.dir={tmp_path / 'predict'}",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    brighter = load_image(out / "dim.png")
    assert brighter.shape == (3, 5, 7) and brighter.mean() > 0.3  # the net learnt to brighten


def test_a_mistyped_choice_names_the_search_path_choices(toy_task):
    args, env = toy_task
    result = run_cli(*args, "model=toy_nett", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: model=toy_nett is not a config")
    assert "toy_net" in result.stderr and "dad" in result.stderr
