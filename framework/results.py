"""Final results of a run: a printed table, ``metrics.json`` and ``metrics.md``, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file and a rename, so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def metrics_markdown(metrics: Mapping[str, float], title: str) -> str:
    lines = [f"# {title}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.6g} |" for name, value in sorted(metrics.items())]
    return "\n".join(lines) + "\n"


def print_metrics(metrics: Mapping[str, float], title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in sorted(metrics.items()):
        table.add_row(name, f"{value:.6g}")
    Console().print(table)


def read_results(output_dir: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of an earlier run in ``output_dir`` ({} if none, or unreadable)."""
    try:
        return json.loads((Path(output_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def write_results(output_dir: str | Path, metrics: Mapping[str, float], extra: Mapping[str, Any]) -> None:
    """``metrics.json`` (metrics plus ``extra``: checkpoints, task, stage …) and ``metrics.md``."""
    output_dir = Path(output_dir)
    title = f"{extra.get('task', '')} {extra.get('experiment', '')} ({extra.get('stage', '')})".strip()
    payload = {"metrics": dict(sorted(metrics.items())), **extra}
    atomic_write_text(output_dir / "metrics.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(output_dir / "metrics.md", metrics_markdown(metrics, title))
