"""Results in the ``../shared/BENCHMARKS.md`` shape: rows, merged partial runs, markdown tables, targets."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from framework.resolvers import cpu_computes_bf16
from framework.results import atomic_write_text

from .runs import RESULTS

ROW_KEY = ("method", "model", "variant", "dataset", "protocol", "scale", "degradation", "source")


def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    version = torch.__version__.split("+")[0]
    cpu = f"{torch.backends.cpu.get_cpu_capability()}, {'native' if cpu_computes_bf16() else 'emulated'} bf16"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu} (torch {version}, {platform.machine()})"


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
    rerun: a fresh row replaces the previous row of the same :data:`ROW_KEY` fields (in place), a new one
    follows the last row of its method (or ends the table), and the published rows stay last."""

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row.get(field) for field in ROW_KEY)

    unused = {key(row): row for row in fresh}
    merged = [unused.pop(key(row), row) for row in previous]
    for row in unused.values():
        same_method = [i for i, old in enumerate(merged) if old.get("method") == row.get("method")]
        merged.insert(same_method[-1] + 1 if same_method else len(merged), row)
    return sorted(merged, key=lambda row: row.get("source") == "paper")


def write_results(
    name: str,
    command: str,
    rows: list[dict[str, Any]],
    markdown: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """``benchmarks/results/<name>.json`` (name, command, date, machine, ``extra`` such as mode / threads /
    targets, rows) and ``<name>.md`` (``markdown``, also printed)."""
    payload = {
        "name": name,
        "command": command,
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        **(extra or {}),
        "rows": rows,
    }
    if extra and "targets" in extra:  # after the rows, where the committed files keep them
        payload["targets"] = payload.pop("targets")
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(RESULTS / f"{name}.md", markdown)
    print(markdown)


def fmt(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; "–" for a missing one."""
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The lines of a markdown table (cells as given, ``str()`` of anything else)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def target(
    name: str,
    value: float | None,
    goal: float | None,
    higher: bool = True,
    measured: bool = True,
    note: str = "",
) -> dict[str, Any]:
    """A target row: ``value`` against ``goal`` (met when ≥ it, or ≤ it when not ``higher``). ``met`` is None
    (not measured) when there is no value or goal, or when ``measured`` is False: a value taken under other
    conditions than the target's (a quick run, fewer images), shown but not judged; ``note`` says why."""
    judged = measured and value is not None and goal is not None
    met = (value >= goal if higher else value <= goal) if judged else None
    row = {"target": name, "value": value, "goal": goal, "met": met}
    return {**row, "note": note} if note else row


def targets_markdown(
    goals: Sequence[Mapping[str, Any]], value_format: str = "{:.2f}", unmeasured: str = "not run"
) -> list[str]:
    """The lines of a target / value / met table of :func:`target` rows (``unmeasured`` where ``met`` is
    None; a note column when one has a note)."""
    met = {True: "yes", False: "**no**", None: unmeasured}
    notes = any(goal.get("note") for goal in goals)
    return markdown_table(
        ("target", "value", "met", *(("note",) if notes else ())),
        [
            (
                goal["target"],
                "–" if goal["value"] is None else value_format.format(goal["value"]),
                met[goal["met"]],
                *((goal.get("note", ""),) if notes else ()),
            )
            for goal in goals
        ],
    )
