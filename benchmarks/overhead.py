"""What the framework costs: per task, its default model and data, the same optimisation steps through
`python run.py` (Hydra, Lightning, default logger and callbacks, progress bar on) and through a bare PyTorch
loop written here, in interleaved rounds; the overhead is the ratio of their median step times.

    python benchmarks/overhead.py          # every task, 3 rounds: benchmarks/results/overhead.{md,json}
    python benchmarks/overhead.py --only phase_retrieval --rounds 5
    python benchmarks/overhead.py --accelerator gpu  # on a GPU: rows marked with the device (overhead_gpu.*)

run.py side: `perf/train_step_ms` of `callbacks/step_timer.py` (batch end to batch end, so the loader,
logging and progress bar are in it; each epoch's first steps and validation are not) and `perf/startup_s`
(the benchmark's launch of the process to the first training batch, data present). A task whose loader
keeps the files it decoded (``data.cache_mb``: auto-correction, portrait segmentation) is timed in its
second epoch over the same files, the steady state of a fit.
Bare side: ``harness.loops.BareLoop``: the batches of the same DataModule collected once (tensors, on the
device), the same module's ``training_step``, optimiser and precision, ``zero_grad / backward / step``,
timed the same way.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from harness import (
    ROOT,
    benchmark_parser,
    fmt,
    markdown_table,
    say,
    target,
    targets_markdown,
    write_results,
)
from harness.loops import SKIP, BareLoop, compose_run_config, rows_per_task

from callbacks.step_timer import LAUNCH_VARIABLE
from framework.resolvers import register_resolvers

# Per task: the overrides that keep its validation / test to a batch (the timed steps are the defaults').
SMALL_EVAL = {
    "phase_retrieval": ["data.val_size=256", "data.test_size=256"],
    "super_resolution": [],
    "style_transfer": [],  # its val_size is the photos' size
    "portrait_segmentation": ["data.val_size=4", "data.test_size=4"],
    "auto_correction": ["data.val_size=4", "data.test_size=2"],
}
STEPS = {  # timed steps per run (after SKIP warm-up steps): ~10 s of steps on 2 CPU cores
    "phase_retrieval": 40,
    "super_resolution": 60,
    "style_transfer": 20,
    "portrait_segmentation": 12,
    "auto_correction": 20,
}
GOAL_RATIO, GOAL_STARTUP_S = 1.05, 5.0
# Tasks whose loader keeps what it decodes (data.cache_mb): timed in a second epoch over the same photos, as
# every epoch of a fit after its first.
WARM = ("auto_correction", "portrait_segmentation")


def overrides(task: str, steps: int, accelerator: str, extra: Sequence[str] = ()) -> list[str]:
    return [
        f"task={task}",
        *extra,
        *SMALL_EVAL[task],
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps + SKIP + 1}",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        f"callbacks.step_timer.skip={SKIP}",
        *(["trainer=gpu"] if accelerator == "gpu" else []),
    ]


def failure(stderr: str) -> str:
    """The line of run.py's stderr that says what went wrong (not Hydra's closing hint)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip() and "HYDRA_FULL_ERROR" not in line]
    said = [line for line in lines if line.startswith("error:") or "Error" in line]
    return (said or lines or ["no output"])[-1]


def run_py_step(task_overrides: list[str], workdir: Path) -> tuple[float, float]:
    """(ms per step, start-up s) of one `python run.py` fit, launched now."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    env = {**os.environ, "WANDB_MODE": "offline", LAUNCH_VARIABLE: repr(time.time())}
    result = subprocess.run(
        [sys.executable, "run.py", *task_overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"run.py {' '.join(task_overrides)} failed: {failure(result.stderr)}")
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    return metrics["perf/train_step_ms"], metrics["perf/startup_s"]


def measure(
    task: str, rounds: int, accelerator: str, workdir: Path, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """The row of ``task`` (``extra``: overrides such as where the data is)."""
    steps = STEPS[task]
    task_overrides = overrides(task, steps, accelerator, extra)
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    cfg = compose_run_config(task_overrides, workdir)
    if task in WARM:  # one epoch = the timed batches' photos; run.py's step time is its last epoch's
        photos = (steps + SKIP + 1) * int(cfg.data.batch_size)
        task_overrides = [o for o in task_overrides if not o.startswith("trainer.max_epochs=")]
        task_overrides += [f"data.train_size={photos}", "trainer.max_epochs=2"]
        cfg = compose_run_config(task_overrides, workdir)
    bare = BareLoop(cfg, steps, device)
    framework_ms, bare_ms, startup_s = [], [], []
    for round_ in range(rounds):  # interleaved: a change of load hits both sides alike
        ms, startup = run_py_step(task_overrides, workdir)
        framework_ms.append(ms)
        startup_s.append(startup)
        bare_ms.append(bare.ms_per_step())
        say(
            f"{task} round {round_ + 1}: run.py {ms:.1f} ms/step, bare {bare_ms[-1]:.1f}, "
            f"start-up {startup:.1f} s"
        )
    run_py, loop = statistics.median(framework_ms), statistics.median(bare_ms)
    return {
        "method": "run.py vs bare loop",
        "model": cfg.module.net._target_,
        "dataset": task,
        "batch_size": cfg.data.get("batch_size"),
        "precision": str(cfg.trainer.precision),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "steps": steps,
        "rounds": rounds,
        "per_round": {"run_py_ms": framework_ms, "bare_ms": bare_ms, "startup_s": startup_s},
        "metrics": {
            "run_py_ms_per_step": run_py,
            "bare_ms_per_step": loop,
            "overhead_ratio": statistics.median(a / b for a, b in zip(framework_ms, bare_ms, strict=True)),
            "run_py_steps_per_s": 1000.0 / run_py,
            "bare_steps_per_s": 1000.0 / loop,
            "startup_s": statistics.median(startup_s),
        },
    }


def markdown(rows: list[dict[str, Any]], goals: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Framework overhead: run.py against a bare PyTorch loop",
        "",
        f"`{command}`: per task, its default model and data; medians of interleaved rounds (ratio: the "
        "median of each round's run.py / bare).",
        "",
        *markdown_table(
            (
                "task",
                "model",
                "precision",
                "device",
                "batch",
                "run.py ms/step",
                "bare ms/step",
                "ratio",
                "start-up s",
            ),
            [
                (
                    row["dataset"],
                    row["model"].rsplit(".", 1)[-1],
                    row["precision"],
                    row["device"],
                    row["batch_size"],
                    fmt(row["metrics"]["run_py_ms_per_step"], 1),
                    fmt(row["metrics"]["bare_ms_per_step"], 1),
                    fmt(row["metrics"]["overhead_ratio"], 3),
                    fmt(row["metrics"]["startup_s"], 1),
                )
                for row in rows
            ],
        ),
        "",
        "## Targets",
        "",
        *targets_markdown(goals, value_format="{:.3f}"),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(
        __doc__,
        only="comma-separated tasks (default: all five)",
        rounds="interleaved rounds per task (default 3)",
    )
    parser.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args()
    register_resolvers()
    rows, name, command = rows_per_task(
        "overhead",
        args,
        STEPS,
        lambda task, workdir: measure(task, args.rounds or 3, args.accelerator, workdir),
    )
    goals = [
        target(
            f"{row['dataset']}: run.py / bare step time",
            row["metrics"]["overhead_ratio"],
            GOAL_RATIO,
            higher=False,
        )
        for row in rows
    ] + [
        target(f"{row['dataset']}: start-up (s)", row["metrics"]["startup_s"], GOAL_STARTUP_S, higher=False)
        for row in rows
    ]
    write_results(name, command, rows, markdown(rows, goals, command), {"targets": goals})


if __name__ == "__main__":
    main()
