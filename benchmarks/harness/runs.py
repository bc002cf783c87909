"""Running `run.py` as a user would, into a run dir a benchmark reuses (or resumes) the next time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from framework.results import atomic_write_text, read_results

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
STARTED = time.perf_counter()


def say(message: str) -> None:
    """Print ``message`` with the seconds since the benchmark started."""
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", flush=True)


def reusable(run_dir: Path, reuse: bool) -> bool:
    """Whether ``run_dir`` holds a finished (not interrupted) run that ``reuse`` lets a benchmark evaluate
    instead of rerun."""
    previous = read_results(run_dir) if reuse else {}
    return bool(previous) and not previous.get("interrupted")


def finished_checkpoint(run_dir: Path) -> str | None:
    """The tested checkpoint of a finished earlier run (so a partial benchmark can fine-tune from a run it
    skips), or None."""
    return read_results(run_dir).get("tested_checkpoint") if reusable(run_dir, reuse=True) else None


def monitored_test_metrics(results: dict[str, Any], monitor: str) -> dict[str, float]:
    """The test figures of a run's ``metrics.json`` for its monitored validation metric (e.g. ``val/iou`` →
    ``test/iou``, or ``test/<set>/iou`` per test set)."""
    name = monitor.removeprefix("val/")
    return {k: v for k, v in results["metrics"].items() if k.startswith("test") and k.endswith("/" + name)}


def run_experiment(overrides: list[str], run_dir: Path, reuse: bool) -> dict[str, Any]:
    """`python run.py <overrides>` into ``run_dir``, its output in ``<run_dir>.log`` beside it (skipped when
    it is :func:`reusable`; with ``reuse``, an interrupted run resumes from its ``last.ckpt``); returns its
    ``metrics.json`` plus the wall time in seconds (of every part of a resumed run: the earlier parts count
    their fit time)."""
    metrics_file = run_dir / "metrics.json"
    previous = read_results(run_dir) if reuse else {}
    if not previous or previous.get("interrupted"):  # not reusable: run it (or resume it)
        last = run_dir / "checkpoints" / "last.ckpt"
        resume = bool(previous.get("interrupted")) and last.is_file()
        command = [
            sys.executable,
            str(ROOT / "run.py"),
            *overrides,
            *([f"ckpt_path={last}"] if resume else []),
            "logger=csv",
            "callbacks.rich_progress_bar=null",
            f"hydra.run.dir={run_dir}",
        ]
        print("$", " ".join(command[1:]), flush=True)
        started = time.perf_counter()
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        log_file = run_dir.parent / f"{run_dir.name}.log"  # not with_suffix: names such as w0.5 hold dots
        with open(log_file, "w") as log:
            result = subprocess.run(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "WANDB_MODE": "offline"},
            )
        if result.returncode != 0:
            raise RuntimeError(f"run failed ({result.returncode}): {' '.join(overrides)}; log: {log_file}")
        payload = json.loads(metrics_file.read_text())
        earlier = float(previous.get("fit_seconds") or 0.0) if resume else 0.0
        payload["wall_seconds"] = time.perf_counter() - started + earlier
        atomic_write_text(metrics_file, json.dumps(payload, indent=2) + "\n")
    return json.loads(metrics_file.read_text())
