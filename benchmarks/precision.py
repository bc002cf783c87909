"""bf16-mixed against fp32 per task, on this CPU: the training step's time (``harness.loops.BareLoop``, both
precisions, and the default one with ``torch.compile``, in the same interleaved rounds) and the test metric
after the same short training through `python run.py` (same seed, data and steps; only
``trainer.precision`` differs).

    python benchmarks/precision.py                 # every task: benchmarks/results/precision.{md,json}
    python benchmarks/precision.py --only portrait_segmentation --rounds 5

A task's default precision (``trainer.precision`` in ``conf/task/<task>.yaml``) should be the faster one
when the short trainings score alike (within ``TOLERANCE`` of the metric's scale); the table says which.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from harness import (
    ROOT,
    benchmark_parser,
    fmt,
    markdown_table,
    monitored_test_metrics,
    run_experiment,
    say,
    write_results,
)
from harness.loops import BareLoop, compose_run_config, rows_per_task
from omegaconf import DictConfig

from framework.resolvers import register_resolvers

PRECISIONS = ("32-true", "bf16-mixed")
COMPILED = "default + compile"
STEPS = 5  # timed steps per round
SHORT = {  # a short training each precision gets (same seed): a few minutes on 2 cores at fp32
    "phase_retrieval": [
        "data.train_size=8192",
        "data.val_size=512",
        "data.test_size=512",
        "trainer.max_epochs=2",
    ],
    "super_resolution": ["data.samples_per_epoch=2048", "trainer.max_epochs=2"],
    "style_transfer": ["data.samples_per_epoch=256", "data.val_size=8", "trainer.max_epochs=1"],
    "portrait_segmentation": [
        "data.train_size=96",
        "data.val_size=16",
        "data.test_size=32",
        "trainer.max_epochs=2",
    ],
    "auto_correction": [
        "data.train_size=192",
        "data.val_size=16",
        "data.test_size=32",
        "trainer.max_epochs=2",
        "trainer.check_val_every_n_epoch=1",
    ],
}
TOLERANCE = 0.01  # "alike": relative difference of the test metric
NOTES = {  # why a task keeps the slower precision
    "style_transfer": "gatys and fast optimise the pixels under the task's precision; the training presets "
    "(experiment=style_*) use bf16-mixed",
}


def short_training(task: str, precision: str, workdir: Path) -> tuple[str, float, float]:
    """(metric name, its test value, fit seconds) of the task's short training at ``precision``."""
    overrides = [
        f"task={task}",
        *SHORT[task],
        f"trainer.precision={precision}",
        "callbacks.image_logger=null",
    ]
    results = run_experiment(overrides, Path(tempfile.mkdtemp(dir=workdir)), reuse=False)
    monitor = compose_run_config([f"task={task}"], workdir).monitor.metric
    name, value = sorted(monitored_test_metrics(results, monitor).items())[0]
    return name, value, results["fit_seconds"]


def measure(task: str, rounds: int, workdir: Path) -> dict[str, Any]:
    cfg = compose_run_config([f"task={task}"], workdir)
    cpu = torch.device("cpu")
    loops = {p: BareLoop(cfg, STEPS, cpu, precision=p) for p in PRECISIONS}
    loops[COMPILED] = BareLoop(cfg, STEPS, cpu, compile=True)  # the default precision, compiled
    times: dict[str, list[float]] = {name: [] for name in loops}
    compile_error = None
    for round_ in range(rounds):
        for name, loop in list(loops.items()):
            try:
                times[name].append(loop.ms_per_step())
            except Exception as error:  # torch.compile's own failures (e.g. an op it cannot trace)
                if name != COMPILED:
                    raise
                compile_error = " ".join(str(error).split())[:200]
                say(f"{task}: torch.compile failed: {compile_error}")
                del loops[COMPILED]
        say(f"{task} round {round_ + 1}: " + ", ".join(f"{n} {times[n][-1]:.1f} ms" for n in loops))
    del loops
    metrics: dict[str, float] = {}
    for precision in PRECISIONS:
        name, value, seconds = short_training(task, precision, workdir)
        metrics[f"ms_per_step_{precision}"] = statistics.median(times[precision])
        metrics[f"{name}_{precision}"] = value
        metrics[f"short_fit_s_{precision}"] = seconds
        say(f"{task} {precision}: {name} {value:.4f} after the short training ({seconds:.0f} s)")
    if compile_error is None:
        metrics["ms_per_step_compiled"] = statistics.median(times[COMPILED])
        default_ms = metrics[f"ms_per_step_{cfg.trainer.precision}"]
        metrics["compile_speedup"] = default_ms / metrics["ms_per_step_compiled"]
    fp32, bf16 = (metrics[f"{name}_{p}"] for p in PRECISIONS)
    alike = abs(bf16 - fp32) <= TOLERANCE * max(abs(fp32), 1e-12)
    speedup = metrics["ms_per_step_32-true"] / metrics["ms_per_step_bf16-mixed"]
    faster = min(PRECISIONS, key=lambda p: metrics[f"ms_per_step_{p}"])
    return {
        "method": "bf16-mixed vs fp32",
        "model": cfg.module.net._target_,
        "dataset": task,
        "metric": name,
        "default": str(cfg.trainer.precision),
        "faster": faster,
        "alike": alike,
        "rounds": rounds,
        **({"compile_error": compile_error} if compile_error else {}),
        "metrics": {**metrics, "bf16_speedup": speedup},
    }


def verdict(row: dict[str, Any], cfg: DictConfig) -> str:
    """Whether the task's default (in ``cfg``, the task's config now) is the faster precision at equal
    quality, and why not where it is not."""
    said = "alike"
    if not row["alike"]:
        higher = row["metrics"][f"{row['metric']}_bf16-mixed"] > row["metrics"][f"{row['metric']}_32-true"]
        said = f"bf16 scores {'better' if higher == (cfg.monitor.mode == 'max') else 'worse'}"
    if str(cfg.trainer.precision) == row["faster"]:
        return f"{said}; the default is the faster"
    why = f": {NOTES[row['dataset']]}" if row["dataset"] in NOTES else ""
    return f"{said}; **the default is {cfg.trainer.precision}**{why}"


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The table, judged against each task's default precision now (``conf/task/<task>.yaml``); the compile
    column was measured at the row's ``default`` then."""
    configs = {row["dataset"]: compose_run_config([f"task={row['dataset']}"], ROOT) for row in rows}
    table = [
        (
            row["dataset"],
            row["model"].rsplit(".", 1)[-1],
            fmt(row["metrics"]["ms_per_step_32-true"], 1),
            fmt(row["metrics"]["ms_per_step_bf16-mixed"], 1),
            fmt(row["metrics"]["bf16_speedup"], 2),
            f"{fmt(row['metrics']['compile_speedup'], 2)} ({row['default']})"
            if "compile_speedup" in row["metrics"]
            else "fails",
            row["metric"],
            fmt(row["metrics"][f"{row['metric']}_32-true"], 4),
            fmt(row["metrics"][f"{row['metric']}_bf16-mixed"], 4),
            configs[row["dataset"]].trainer.precision,
            verdict(row, configs[row["dataset"]]),
        )
        for row in rows
    ]
    header = ("task", "model", "fp32 ms/step", "bf16 ms/step", "bf16 speed-up", "compile speed-up",
              "test metric", "fp32", "bf16", "default", "verdict")  # fmt: skip
    lines = [
        "# Precision: bf16-mixed against fp32 on this CPU",
        "",
        f"`{command}`: step times are medians of interleaved rounds; the metric is the test value after "
        f"the same short training (same seed) at each precision; alike = within {TOLERANCE:.0%}; compile "
        "speed-up: the step with the net through `torch.compile` (`compile=true`; compilation left out) at "
        "the precision in brackets; default: the task's `trainer.precision` now.",
        "",
        *markdown_table(header, table),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(
        __doc__, only="comma-separated tasks (default: all five)", rounds="interleaved rounds (default 3)"
    )
    args = parser.parse_args()
    register_resolvers()
    rows, name, command = rows_per_task(
        "precision", args, SHORT, lambda task, workdir: measure(task, args.rounds or 3, workdir)
    )
    write_results(name, command, rows, markdown(rows, command), {"tolerance": TOLERANCE})


if __name__ == "__main__":
    main()
