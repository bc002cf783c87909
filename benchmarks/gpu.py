"""`make bench-gpu`: the speed rows on a GPU machine, in about 8 minutes: the overhead and data benchmarks
(`--accelerator gpu`) and one short `trainer=gpu` training per task whose data travels in the bundle, and
the training step of the other tasks on synthetic batches; every row names the device.

    make gpu-bundle                     # here (online): wheels + data (< 60 MB) in dist/gpu-bundle/
    make bench-gpu                      # there: installs the wheels PyTorch's machine lacks, then this script
    python benchmarks/gpu.py --bundle dist/gpu-bundle --rounds 2

The bundle carries Fashion-MNIST (PR-DAD I, make run's job), T91 / Set5 / Set14 (ESPCN) and the two weight
files the other tasks' nets and losses load; EG1800, the style photos' training folders and the
auto-correction photos do not fit in 60 MB, so portrait segmentation, style transfer and auto-correction
get a step-rate row on their modules' ``example_batch`` (the training shape) instead of a training.
Writes benchmarks/results/gpu.{md,json}.
"""

from __future__ import annotations

import importlib.util
import sys
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
from harness.loops import BareLoop, compose_run_config

from framework.resolvers import register_resolvers

WITH_DATA = ("phase_retrieval", "super_resolution")
SYNTHETIC = ("style_transfer", "portrait_segmentation", "auto_correction")
SHORT = {  # one short training each (the make run job's schedule, shortened)
    "phase_retrieval": ["trainer.max_epochs=2"],
    "super_resolution": ["trainer.max_epochs=2"],
}
STEPS = 50  # timed synthetic steps


def load_benchmark(name: str) -> Any:
    """benchmarks/<name>.py as a module (by path: the repository's data/ folder may shadow `import data`)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


overhead_benchmark, data_benchmark = load_benchmark("overhead"), load_benchmark("data")


def data_overrides(task: str, bundle: Path) -> list[str]:
    """Where the bundle's data is, for ``task``."""
    if task == "phase_retrieval":
        return [f"data.local_copies=[{bundle / 'fashion-mnist'}]"]
    return []


def short_training(task: str, bundle: Path, workdir: Path) -> dict[str, Any]:
    overrides = [f"task={task}", "trainer=gpu", *SHORT[task], *data_overrides(task, bundle)]
    overrides.append("callbacks.image_logger=null")
    results = run_experiment(overrides, Path(tempfile.mkdtemp(dir=workdir)), reuse=False)
    monitor = compose_run_config([f"task={task}"], workdir).monitor.metric
    return {
        "method": "short training (trainer=gpu)",
        "dataset": task,
        "overrides": SHORT[task],
        "metrics": {
            **monitored_test_metrics(results, monitor),
            "fit_seconds": results["fit_seconds"],
            "train_steps_per_s": 1000.0 / results["metrics"]["perf/train_step_ms"],
            "startup_s": results["metrics"]["perf/startup_s"],
        },
    }


def synthetic_step(task: str, device: torch.device, workdir: Path) -> dict[str, Any]:
    cfg = compose_run_config([f"task={task}"], workdir)
    loop = BareLoop(cfg, STEPS, device, synthetic=True)
    ms = min(loop.ms_per_step() for _ in range(2))
    return {
        "method": "training step on example batches",
        "model": cfg.module.net._target_,
        "dataset": task,
        "batch_size": int(cfg.data.batch_size),
        "precision": loop.precision,
        "metrics": {"ms_per_step": ms, "steps_per_s": 1000.0 / ms},
    }


def markdown(rows: list[dict[str, Any]], device: str, command: str) -> str:
    table = []
    for row in rows:
        metrics = row["metrics"]
        figures = ", ".join(f"{k} {fmt(v, 3)}" for k, v in metrics.items())
        table.append((row["dataset"], row["method"], figures))
    lines = [
        f"# On a GPU: {device}",
        "",
        f"`{command}`; the overhead and data tables of this run: overhead_gpu.md, data_gpu.md.",
        "",
        *markdown_table(("task", "row", "figures"), table),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, rounds="interleaved rounds of the overhead / data rows (default 2)")
    parser.add_argument("--bundle", type=Path, default=ROOT / "dist" / "gpu-bundle")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device: make bench-gpu runs on a GPU machine (see its docstring)")
    register_resolvers()
    device = torch.device("cuda")
    device_name = torch.cuda.get_device_name()
    rounds = args.rounds or 2
    rows: list[dict[str, Any]] = []
    overhead_rows, data_rows = [], []
    with tempfile.TemporaryDirectory(prefix="gpu-") as tmp:
        workdir = Path(tmp)
        for task in WITH_DATA:
            extra = data_overrides(task, args.bundle.resolve())
            overhead_rows.append(overhead_benchmark.measure(task, rounds, "gpu", workdir, extra))
            data_rows.append(data_benchmark.measure(task, rounds, device, workdir, extra))
            rows.append(short_training(task, args.bundle.resolve(), workdir))
            say(f"{task}: {rows[-1]['metrics']}")
        for task in SYNTHETIC:
            rows.append(synthetic_step(task, device, workdir))
            say(f"{task}: {rows[-1]['metrics']}")
    for row in rows:
        row["device"] = device_name
    command = " ".join(["python benchmarks/gpu.py", *sys.argv[1:]])
    for name, table_rows, benchmark in (
        ("overhead_gpu", overhead_rows, overhead_benchmark),
        ("data_gpu", data_rows, data_benchmark),
    ):
        write_results(name, command, table_rows, benchmark.markdown(table_rows, [], command))
    write_results("gpu", command, rows, markdown(rows, device_name, command))


if __name__ == "__main__":
    main()
