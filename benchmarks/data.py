"""Can the loaders feed the models? Per task (its default data and model): samples/s of the training loader
with 0 and 2 worker processes, against the samples/s of the model's training step (``harness.loops.BareLoop``
on batches already in memory), measured in the same interleaved rounds.

    python benchmarks/data.py                      # every task, 3 rounds: benchmarks/results/data.{md,json}
    python benchmarks/data.py --only super_resolution --rounds 5
    python benchmarks/data.py --accelerator gpu    # the step on a GPU: data_gpu.{md,json}

A loader's rate is over ``BATCHES`` batches after its first (the first waits for the workers to start, and
is reported on its own); the target is ≥ 1.5× the step's rate for the task's default ``data.num_workers``.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from harness import (
    benchmark_parser,
    fmt,
    markdown_table,
    say,
    target,
    targets_markdown,
    write_results,
)
from harness.loops import BareLoop, compose_run_config, rows_per_task

from framework.resolvers import register_resolvers

TASKS = ("phase_retrieval", "super_resolution", "style_transfer", "portrait_segmentation", "auto_correction")
WORKERS = (0, 2)
BATCHES = 10  # loader batches timed per round
STEPS = 5  # model steps timed per round
GOAL = 1.5  # loader samples/s over step samples/s


def loader_rate(cfg: Any, workers: int) -> tuple[float, float]:
    """(samples/s over BATCHES batches after the first, seconds to the first batch) of the training loader
    with ``workers`` worker processes."""
    cfg.data.num_workers = workers
    datamodule = hydra.utils.instantiate(cfg.data, predict_input=None)
    datamodule.setup("fit")
    started = time.perf_counter()
    batches = iter(datamodule.train_dataloader())
    next(batches)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    samples = 0
    for _ in range(BATCHES):
        samples += batch_size(next(batches))
    seconds = time.perf_counter() - started
    del batches  # stops the workers
    return samples / seconds, first_s


def batch_size(batch: Any) -> int:
    tensor = next(value for value in batch.values() if isinstance(value, torch.Tensor))
    return int(tensor.shape[0])


def measure(
    task: str, rounds: int, device: torch.device, workdir: Path, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The row of ``task`` (``extra``: overrides such as where the data is)."""
    cfg = compose_run_config([f"task={task}", *extra], workdir)
    default_workers = int(cfg.data.num_workers)
    loop = BareLoop(cfg, STEPS, device)
    size = batch_size(loop.batches[0])
    step_rates, rates, firsts = [], {w: [] for w in WORKERS}, {w: [] for w in WORKERS}
    for round_ in range(rounds):
        step_rates.append(size * 1000.0 / loop.ms_per_step())
        for workers in WORKERS:
            rate, first = loader_rate(copy.deepcopy(cfg), workers)
            rates[workers].append(rate)
            firsts[workers].append(first)
        say(
            f"{task} round {round_ + 1}: step {step_rates[-1]:.0f} samples/s, loader "
            + ", ".join(f"{w} workers {rates[w][-1]:.0f}" for w in WORKERS)
        )
    step = statistics.median(step_rates)
    metrics: dict[str, float] = {"step_samples_per_s": step}
    for workers in WORKERS:
        metrics[f"loader_samples_per_s_{workers}_workers"] = statistics.median(rates[workers])
        metrics[f"loader_ratio_{workers}_workers"] = statistics.median(rates[workers]) / step
        metrics[f"first_batch_s_{workers}_workers"] = statistics.median(firsts[workers])
    return {
        "method": "training loader vs training step",
        "model": cfg.module.net._target_,
        "dataset": task,
        "data": cfg.data._target_,
        "batch_size": size,
        "default_workers": default_workers,
        "precision": str(cfg.trainer.precision),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "rounds": rounds,
        "metrics": metrics,
    }


def markdown(rows: list[dict[str, Any]], goals: list[dict[str, Any]], command: str) -> str:
    header = ("task", "data", "batch", "step samples/s", "device")
    worker_columns = tuple(
        column for w in WORKERS for column in (f"loader {w} workers", f"ratio {w}w", f"first batch {w}w s")
    )
    table = [
        (
            row["dataset"],
            row["data"].rsplit(".", 1)[-1],
            row["batch_size"],
            fmt(row["metrics"]["step_samples_per_s"], 0),
            row["device"],
            *(
                cell
                for w in WORKERS
                for cell in (
                    fmt(row["metrics"][f"loader_samples_per_s_{w}_workers"], 0),
                    fmt(row["metrics"][f"loader_ratio_{w}_workers"], 1),
                    fmt(row["metrics"][f"first_batch_s_{w}_workers"], 2),
                )
            ),
        )
        for row in rows
    ]
    lines = [
        "# Data loading: the training loaders against the training step",
        "",
        f"`{command}`: samples/s, medians of interleaved rounds; ratio = loader / step.",
        "",
        *markdown_table(header + worker_columns, table),
        "",
        "## Targets",
        "",
        *targets_markdown(goals, value_format="{:.1f}"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(
        __doc__, only="comma-separated tasks (default: all five)", rounds="interleaved rounds (default 3)"
    )
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args()
    register_resolvers()
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    rows, name, command = rows_per_task(
        "data", args, TASKS, lambda task, workdir: measure(task, args.rounds or 3, device, workdir)
    )
    goals = [
        target(
            f"{row['dataset']}: loader / step ({row['default_workers']} workers, the default)",
            row["metrics"][f"loader_ratio_{row['default_workers']}_workers"],
            GOAL,
        )
        for row in rows
    ]
    write_results(name, command, rows, markdown(rows, goals, command), {"targets": goals})


if __name__ == "__main__":
    main()
