"""A task's training step without the framework: the config `run.py` would compose, its DataModule's
batches collected once (on the device), and its module, optimiser and precision stepped by hand. What the
overhead, data and precision benchmarks compare the framework and the loaders with.

    loop = BareLoop(compose_run_config(["task=super_resolution"], workdir), steps=20, device=cpu)
    loop.ms_per_step()       # mean wall time per step after SKIP warm-up steps, as callbacks/step_timer.py

The step is the module's own ``training_step`` (its net, loss and measurement model; ``self.log`` does
nothing without a trainer), then ``zero_grad / backward / step``; the learning-rate schedule is left out
(one scalar update per step).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from .runs import ROOT
from .tables import merge_into_previous

SKIP = 2  # warm-up steps left out of a mean (callbacks/step_timer.py's default)
warnings.filterwarnings(
    "ignore", message=r"You are trying to `self.log\(\)` but the `self.trainer` reference"
)


def compose_run_config(overrides: Sequence[str], output_dir: Path) -> DictConfig:
    """The config `python run.py <overrides>` runs, writing under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.paths.log_dir = str(output_dir)
        del cfg.hydra
    return cfg


def move(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors in dicts, lists, tuples) on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: move(value, device) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move(value, device) for value in batch)
    return batch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareLoop:
    """``steps`` + warm-up batches of the task's training loader, and its module stepped by hand
    (``precision``: the config's trainer precision unless given, "bf16-mixed" or "32-true"; ``compile``:
    the net through ``torch.compile``, as ``compile=true`` does in run.py; ``synthetic``: the module's
    ``example_batch`` at the data's batch size instead of the data, for a machine that has not got it)."""

    def __init__(
        self,
        cfg: DictConfig,
        steps: int,
        device: torch.device,
        precision: str | None = None,
        compile: bool = False,
        synthetic: bool = False,
    ) -> None:
        pl.seed_everything(cfg.seed, workers=True)
        self.module = hydra.utils.instantiate(cfg.module).to(device).train()
        self.device_batch: Callable[[Any], Any] = lambda batch: batch
        if synthetic:
            batches = [self.module.example_batch(int(cfg.data.batch_size)) for _ in range(steps + SKIP + 1)]
        else:
            datamodule = hydra.utils.instantiate(cfg.data, predict_input=None)
            datamodule.setup("fit")
            loader, batches = datamodule.train_dataloader(), []
            while len(batches) < steps + SKIP + 1:  # a loader with fewer batches starts again
                batches += itertools.islice(loader, steps + SKIP + 1 - len(batches))
            self.device_batch = lambda batch: datamodule.device_batch(batch, training=True)
        self.batches = [move(batch, device) for batch in batches]
        self.device = device
        if compile:
            self.module.net.compile()
        trainable = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = self.module.optimizer_factory(params=trainable)
        self.clip = cfg.trainer.get("gradient_clip_val")
        self.precision = precision or str(cfg.trainer.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision.startswith("bf16"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self, index: int) -> None:
        batch = self.device_batch(self.batches[index])  # augmentation, on-device synthesis: as run.py
        with self.autocast():
            loss = self.module.training_step(batch, index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip)
        self.optimizer.step()

    def ms_per_step(self) -> float:
        """Mean step time, end to end, over every batch after the first ``SKIP`` + 1."""
        ends = []
        for index in range(len(self.batches)):
            self.step(index)
            synchronize(self.device)
            ends.append(time.perf_counter())
        timed = ends[SKIP:]
        return 1000.0 * (timed[-1] - timed[0]) / (len(timed) - 1)


def rows_per_task(
    script: str,
    args: argparse.Namespace,
    tasks: Sequence[str],
    measure: Callable[[str, Path], dict[str, Any]],
) -> tuple[list[dict[str, Any]], str, str]:
    """``measure(task, workdir)`` for each task of ``args.only`` (default ``tasks``): the rows, the results'
    name (``script``, ``<script>_gpu`` with ``--accelerator gpu``) and the command; a partial run's rows are
    merged into the previous results, so it keeps the other tasks' rows."""
    chosen = [task for task in args.only.split(",") if task] or list(tasks)
    with tempfile.TemporaryDirectory(prefix=f"{script}-") as workdir:
        rows = [measure(task, Path(workdir)) for task in chosen]
    name = script if getattr(args, "accelerator", "cpu") == "cpu" else f"{script}_gpu"
    command = " ".join([f"python benchmarks/{script}.py", *sys.argv[1:]])
    if args.only:
        rows, command = merge_into_previous(name, rows, command)
    return rows, name, command
