"""One table and one figure per multirun: ``python -m scripts.report <multirun dir>`` (``make report DIR=…``).

Reads every job of the sweep (``<dir>/<job>/.hydra/overrides.yaml``, ``metrics.json``, ``run.log``) and writes
into the multirun dir:

* ``report.md`` / ``report.csv``: one row per job with the overrides that vary across the sweep and every
  metric of its ``metrics.json`` (the monitored one first, the best job in bold); the overrides all jobs share
  are listed once above the table;
* ``report.png``: the monitored metric against each swept parameter (numbers on a log axis when they span
  two decades or more, other values as categories);
* failed jobs are listed, not dropped: a job without ``metrics.json`` (its ``run.log``'s last error line), an
  interrupted one (``"interrupted": true``), and, for a basic-sweeper multirun, the jobs that never started.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from omegaconf import OmegaConf

from framework.sweeps import sweep_jobs

OK, INTERRUPTED, FAILED, NOT_STARTED = "ok", "interrupted", "failed", "not started"
_ERROR_RECORD = re.compile(r"\]\[ERROR\] - (?P<message>.*)$")
_ERROR_WORDS = re.compile(r"(Error|Exception|error:|Killed|Traceback)")


@dataclass
class Job:
    """One job of a multirun as its run dir records it."""

    num: int
    dir: Path | None
    overrides: dict[str, str]
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float | None = None
    error: str | None = None


def override_key_value(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def last_error_line(log_file: Path) -> str | None:
    """The message of the last ERROR record of a Hydra job log, else its last line that names an error."""
    try:
        lines = [line.rstrip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    for line in reversed(lines):
        match = _ERROR_RECORD.search(line)
        if match:
            return match["message"]
    return next((line for line in reversed(lines) if _ERROR_WORDS.search(line)), None)


def job_number(job_dir: Path) -> int | None:
    try:
        return int(OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra.job.num)
    except Exception:
        return int(job_dir.name) if job_dir.name.isdigit() else None


def read_job(job_dir: Path, num: int) -> Job:
    overrides = dict(override_key_value(o) for o in OmegaConf.load(job_dir / ".hydra" / "overrides.yaml"))
    try:
        results = json.loads((job_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        error = last_error_line(job_dir / "run.log") or "no metrics.json and no error in run.log"
        return Job(num, job_dir, overrides, FAILED, error=error)
    metrics = {k: float(v) for k, v in results.get("metrics", {}).items() if isinstance(v, int | float)}
    status = INTERRUPTED if results.get("interrupted") else OK
    error = (
        "interrupted: resume with ckpt_path=<its checkpoints/last.ckpt>" if status == INTERRUPTED else None
    )
    return Job(num, job_dir, overrides, status, metrics, results.get("fit_seconds"), error)


def planned_jobs(sweep_dir: Path) -> list[dict[str, str]]:
    """The jobs a basic-sweeper multirun was to launch (from ``multirun.yaml``); [] for other sweepers."""
    try:
        hydra_cfg = OmegaConf.load(sweep_dir / "multirun.yaml").hydra
        if not str(hydra_cfg.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return []
        params = OmegaConf.to_container(hydra_cfg.sweeper.get("params") or {})
        jobs = sweep_jobs(params, list(hydra_cfg.overrides.task))
    except Exception:  # not a multirun dir of ours, or a sweep this parser cannot expand: list what ran
        return []
    return [dict(override_key_value(o) for o in job) for job in jobs]


def collect(sweep_dir: Path) -> list[Job]:
    """Every job of ``sweep_dir`` in launch order, the ones that never started included."""
    jobs: dict[int, Job] = {}
    job_dirs = sorted({p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")} - {sweep_dir})
    for index, job_dir in enumerate(job_dirs):
        num = job_number(job_dir)
        num = num if num is not None and num not in jobs else 10**6 + index
        jobs[num] = read_job(job_dir, num)
    for num, overrides in enumerate(planned_jobs(sweep_dir)):
        if num not in jobs:
            jobs[num] = Job(
                num, None, overrides, NOT_STARTED, error="never started (the sweep stopped before)"
            )
    return [jobs[num] for num in sorted(jobs)]


def swept_and_common(jobs: Sequence[Job]) -> tuple[list[str], dict[str, str]]:
    """The override keys whose value differs across jobs (in command-line order), and those all jobs share."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    swept = [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]
    common = {k: jobs[0].overrides[k] for k in keys if k not in swept}
    return swept, common


def monitored_metric(sweep_dir: Path, jobs: Sequence[Job]) -> tuple[str | None, str]:
    """(metric, "max" | "min") the sweep optimised: the jobs' ``optimized_metric`` / ``monitor``."""
    for job in jobs:
        if job.dir is None:
            continue
        try:
            cfg = OmegaConf.load(job.dir / ".hydra" / "config.yaml")
        except OSError:
            continue
        metric = cfg.get("optimized_metric") or OmegaConf.select(cfg, "monitor.metric")
        return (str(metric) if metric else None), str(OmegaConf.select(cfg, "monitor.mode") or "max")
    return None, "max"


def metric_columns(jobs: Sequence[Job], monitored: str | None) -> list[str]:
    names = {name for job in jobs for name in job.metrics}
    order = {"test": 0, "val": 1, "train": 2}
    ranked = sorted(names - {monitored}, key=lambda n: (order.get(n.split("/", 1)[0], 3), n))
    return ([monitored] if monitored in names else []) + ranked


def best_job(jobs: Sequence[Job], metric: str | None, mode: str) -> Job | None:
    scored = [j for j in jobs if j.status == OK and metric and math.isfinite(j.metrics.get(metric, math.nan))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda j: j.metrics[metric])


def fmt(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def short(value: str) -> str:
    """A swept number as 4 significant digits (Optuna's 0.00013066739238053285 → 0.0001307); others as is."""
    number = as_number(value)
    return f"{number:.4g}" if number is not None and len(value) > 6 else value


def markdown(
    sweep_dir: Path, jobs: Sequence[Job], swept: list[str], common: dict[str, str], metrics: list[str], best
) -> str:
    ok = sum(job.status == OK for job in jobs)
    lines = [f"# Sweep {sweep_dir}", "", f"{ok} of {len(jobs)} jobs finished."]
    if common:
        lines += ["", "Every job: " + " ".join(f"`{k}={v}`" for k, v in common.items())]
    header = ["job", "status", *swept, *metrics, "fit s"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for job in jobs:
        cells = [str(job.num), job.status, *(short(job.overrides.get(k, "—")) for k in swept)]
        values = [fmt(job.metrics.get(m)) for m in metrics]
        if job is best and values:
            values[0] = f"**{values[0]}**"
        lines.append("| " + " | ".join([*cells, *values, fmt(job.fit_seconds)]) + " |")
    failed = [job for job in jobs if job.status != OK]
    if failed:
        lines += ["", "## Failed, interrupted or not started", ""]
        for job in failed:
            where = f" ({job.dir})" if job.dir else ""
            lines.append(f"- job {job.num} [{job.status}]{where}: {job.error}")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, jobs: Sequence[Job], swept: list[str], metrics: list[str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["job", "status", *swept, *metrics, "fit_seconds", "error", "dir"])
        for job in jobs:
            writer.writerow(
                [
                    job.num,
                    job.status,
                    *(job.overrides.get(k, "") for k in swept),
                    *(job.metrics.get(m, "") for m in metrics),
                    "" if job.fit_seconds is None else job.fit_seconds,
                    job.error or "",
                    job.dir or "",
                ]
            )


def as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def plot(path: Path, jobs: Sequence[Job], swept: list[str], metric: str) -> bool:
    """The monitored metric against each swept parameter, one panel each; False if nothing to plot."""
    done = [j for j in jobs if j.status == OK and math.isfinite(j.metrics.get(metric, math.nan))]
    if not swept or not done:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(swept))
    rows = math.ceil(len(swept) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, swept, strict=False):
        raw = [job.overrides.get(key, "—") for job in done]
        ys = [job.metrics[metric] for job in done]
        numbers = [as_number(v) for v in raw]
        if all(n is not None for n in numbers) and len(set(numbers)) > 1:
            xs = [float(n) for n in numbers]  # type: ignore[arg-type]
            positive = min(xs) > 0
            if positive and max(xs) / min(xs) >= 100:
                ax.set_xscale("log")
            ax.scatter(xs, ys, alpha=0.7)
            levels = sorted(set(xs))
            means = [mean(y for x, y in zip(xs, ys, strict=True) if x == level) for level in levels]
            ax.plot(levels, means, "-", alpha=0.5)
        else:
            categories = list(dict.fromkeys(raw))
            xs = [categories.index(v) for v in raw]
            ax.scatter(xs, ys, alpha=0.7)
            for i, category in enumerate(categories):
                level = mean(y for v, y in zip(raw, ys, strict=True) if v == category)
                ax.plot([i - 0.3, i + 0.3], [level, level], "k-", lw=1)
            ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(key)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(swept) :]:
        ax.set_visible(False)
    fig.suptitle(f"{metric}: each job (dots), mean per value (lines)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def report(sweep_dir: str | Path, metric: str | None = None) -> str:
    """Write ``report.md``, ``report.csv`` (and ``report.png``) into ``sweep_dir``; return the markdown."""
    sweep_dir = Path(sweep_dir)
    jobs = collect(sweep_dir)
    if not jobs:
        raise SystemExit(f"error: {sweep_dir} holds no job of a multirun (no */.hydra/overrides.yaml)")
    monitored, mode = monitored_metric(sweep_dir, jobs)
    monitored = metric or monitored
    swept, common = swept_and_common(jobs)
    metrics = metric_columns(jobs, monitored)
    text = markdown(sweep_dir, jobs, swept, common, metrics, best_job(jobs, monitored, mode))
    (sweep_dir / "report.md").write_text(text)
    write_csv(sweep_dir / "report.csv", jobs, swept, metrics)
    if monitored and plot(sweep_dir / "report.png", jobs, swept, monitored):
        text += f"\n![{monitored} against each swept parameter](report.png)\n"
        (sweep_dir / "report.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("sweep_dir", help="a multirun dir: outputs/<task>/<experiment>/multirun/<time>")
    parser.add_argument("--metric", help="the metric to plot and rank by (default: the jobs' monitored one)")
    args = parser.parse_args(argv)
    print(report(args.sweep_dir, args.metric))
    print(f"written: {Path(args.sweep_dir) / 'report.md'}, report.csv, report.png")


if __name__ == "__main__":
    main()
