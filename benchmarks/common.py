"""What every benchmark shares: running `run.py` as a user would, reading its results, writing tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from framework.results import atomic_write_text, read_results  # noqa: E402


def machine() -> str:
    return (
        f"{os.cpu_count()} CPU cores, no GPU (torch {torch.__version__.split('+')[0]}, {platform.machine()})"
    )


def reusable(run_dir: Path, reuse: bool) -> bool:
    """Whether ``run_dir`` holds a finished (not interrupted) run that ``reuse`` lets a benchmark evaluate
    instead of rerun."""
    previous = read_results(run_dir) if reuse else {}
    return bool(previous) and not previous.get("interrupted")


def run_experiment(
    overrides: list[str], run_dir: Path, reuse: bool, log_file: Path | None = None
) -> dict[str, Any]:
    """`python run.py <overrides>` into ``run_dir`` (skipped when it is :func:`reusable`; with ``reuse``, an
    interrupted run resumes from its ``last.ckpt``); returns its ``metrics.json`` plus the wall time in
    seconds (of every part of a resumed run: the earlier parts count their fit time)."""
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
        log = open(log_file or os.devnull, "w")  # noqa: SIM115
        with log:
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


ROW_KEY = ("method", "model", "variant", "dataset", "protocol", "scale", "degradation", "source")


def previous_results(name: str) -> dict[str, Any]:
    """The committed ``benchmarks/results/<name>.json`` ({} if none)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def merge_into_previous(
    name: str, rows: list[dict[str, Any]], command: str
) -> tuple[list[dict[str, Any]], str]:
    """A partial run's rows merged into ``name``'s committed results (:func:`merge_rows`), and its command
    saying so."""
    previous = previous_results(name)
    if not previous:
        return rows, command
    return merge_rows(previous["rows"], rows), f"{command} (merged into the rows of {previous['date']})"


def merge_rows(previous: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A partial run's rows merged into the previous results, so ``--only`` never drops the rows it did not
    rerun: a fresh row replaces the previous row of the same method / data / protocol (in place), a new one
    follows the last row of its method (or ends the table), and the published rows stay last."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(field) for field in ROW_KEY)

    unused = {key(row): row for row in fresh}
    merged = [unused.pop(key(row), row) for row in previous]
    for row in unused.values():
        same_method = [i for i, old in enumerate(merged) if old.get("method") == row.get("method")]
        merged.insert(same_method[-1] + 1 if same_method else len(merged), row)
    return sorted(merged, key=lambda row: row.get("source") == "paper")


def write_results(name: str, command: str, rows: list[dict[str, Any]], markdown: str) -> None:
    payload = {
        "name": name,
        "command": command,
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(RESULTS / f"{name}.md", markdown)
    print(markdown)
