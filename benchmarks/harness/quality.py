"""Quality figures from the task's own test step: a finished run's ``metrics.json``, or ``stage=test`` run
in-process on its config and checkpoint (with config overrides, fewer batches, or another net in its place:
a reduced-precision or ONNX Runtime variant). No benchmark re-implements a test step."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.data import extract_batch_size
from omegaconf import DictConfig, OmegaConf
from torch import nn

from framework.export import build_module
from framework.results import read_results

PREFIX = "test/"


@dataclass
class RunMetrics:
    """Test metrics by test set (``""`` for a task with one unnamed test set) and the images they average."""

    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)

    def of(self, test_set: str = "", digits: int | None = None) -> dict[str, float]:
        """The metrics of one test set (``digits``: rounded), without the loss."""
        found = {k: v for k, v in self.metrics.get(test_set, {}).items() if k != "loss"}
        return found if digits is None else {k: round(v, digits) for k, v in found.items()}


def split_test_metrics(flat: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Test metrics by test set: ``{"test/Set5/psnr_y": a, "test/mse": b, "val/…": …}`` →
    ``{"Set5": {"psnr_y": a}, "": {"mse": b}}``."""
    by_set: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        if key.startswith(PREFIX):
            test_set, _, metric = key.removeprefix(PREFIX).rpartition("/")
            by_set.setdefault(test_set, {})[metric] = float(value)
    return by_set


def run_config(run_dir: Path, overrides: Mapping[str, Any] | None = None) -> DictConfig:
    """A run's ``config_resolved.yaml`` with ``overrides`` (dotted key → value, a dict value replacing the
    whole node: ``{"data.test_dirs": {"Set5": …}}``). The config is resolved: an override changes that one
    value, not the values that were interpolated from it when the run was made."""
    cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    assert isinstance(cfg, DictConfig)
    for key, value in (overrides or {}).items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def test_set_sizes(cfg: DictConfig) -> dict[str, int]:
    """Images in each test set of the run's DataModule (``test_set_names``; ``""`` for a single set)."""
    datamodule = hydra.utils.instantiate(cfg.data, predict_input=None)
    datamodule.setup("test")
    sets = datamodule.test_set
    if not isinstance(sets, list):
        return {"": len(sets)}
    names = getattr(datamodule, "test_set_names", None) or [str(i) for i in range(len(sets))]
    return {name: len(dataset) for name, dataset in zip(names, sets, strict=True)}


def read_test_metrics(run_dir: Path) -> RunMetrics:
    """The test metrics a finished run wrote to its ``metrics.json`` (fit's test of the best checkpoint, or
    ``stage=test``), and the size of each test set it covered."""
    results = read_results(run_dir)
    metrics = split_test_metrics(results.get("metrics", {}))
    if set(metrics) <= {""} and results.get("n_test"):
        return RunMetrics(metrics, {"": int(results["n_test"])})
    sizes = test_set_sizes(run_config(run_dir))
    return RunMetrics(metrics, {name: sizes[name] for name in metrics if name in sizes})


class _SampleCounter(Callback):
    """Counts the test samples of each test set (what a limited test covered)."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        names = getattr(trainer.datamodule, "test_set_names", None)
        name = names[dataloader_idx] if names else ""
        self.n[name] = self.n.get(name, 0) + extract_batch_size(batch)


def run_test(
    run_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    net: nn.Module | None = None,
    limit_test_batches: int | float | None = None,
    precision: str | None = None,
) -> RunMetrics:
    """``stage=test`` of a finished run in this process: its DataModule and LightningModule from its config
    (with ``overrides``, see :func:`run_config`), seeded as `run.py` seeds them, the net's weights from its
    tested checkpoint, or ``net`` in the net's place (e.g. :class:`harness.speed.Bf16Autocast` of the
    trained net, or an :class:`framework.export.OnnxNet`); the task's own test step on the CPU, over the
    first ``limit_test_batches`` batches of each test set (None: all), at the run's own
    ``trainer.precision`` (so it scores what the run's test scored), or at ``precision`` (e.g. "32-true":
    the reference a reduced-precision variant is compared with)."""
    cfg = run_config(run_dir, overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = hydra.utils.instantiate(cfg.data, predict_input=None)
    checkpoint = None if net is not None else read_results(run_dir).get("tested_checkpoint")
    module = build_module(cfg, checkpoint)
    if net is not None:
        module.net = net
    counter = _SampleCounter()
    quiet = logging.getLogger("lightning.pytorch")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no "GPU available: …" lines per evaluation
    try:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            precision=precision or cfg.trainer.get("precision") or "32-true",
            logger=False,
            callbacks=[counter],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_test_batches=limit_test_batches,
        )
        trainer.test(module, datamodule=datamodule, verbose=False)
    finally:
        quiet.setLevel(level)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return RunMetrics(split_test_metrics(metrics), counter.n)


def run_metrics(
    run_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    net: nn.Module | None = None,
    limit_test_batches: int | float | None = None,
    precision: str | None = None,
) -> RunMetrics:
    """A finished run's test metrics: its own ``metrics.json`` (:func:`read_test_metrics`) when nothing is
    asked that its test did not do, else its test step again with what is asked (:func:`run_test`)."""
    if overrides or net is not None or limit_test_batches is not None or precision is not None:
        return run_test(run_dir, overrides, net, limit_test_batches, precision)
    return read_test_metrics(run_dir)
