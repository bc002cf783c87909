"""``scripts/report.py`` on a fabricated multirun dir: one row per job (failed, interrupted and never-started
jobs included, with their reason), the swept overrides as columns, the best job marked, CSV and PNG."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from scripts.report import collect, last_error_line, main

SWEEP = {"module.optimizer.lr": "0.0001,0.001,0.01", "model": "dad,conv_only"}  # as Hydra writes them
COMMON = ["experiment=pr_ablation", "trainer.max_epochs=1"]


def fabricate_job(sweep: Path, num: int, overrides: list[str], results: dict | None, log: str = "") -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    config = {"optimized_metric": "val/ssim", "monitor": {"metric": "val/ssim", "mode": "max"}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (job / "run.log").write_text(log)
    if results is not None:
        (job / "metrics.json").write_text(json.dumps(results))


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    """A basic-sweeper multirun of 6 planned jobs: 2 finished, 1 crashed, 1 interrupted, 2 never started."""
    hydra = {
        "sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper", "params": SWEEP}
    }
    hydra["overrides"] = {"task": COMMON}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra}, sort_keys=False))
    ok = {"interrupted": False, "fit_seconds": 12.5}
    fabricate_job(
        tmp_path,
        0,
        ["module.optimizer.lr=0.0001", "model=dad", *COMMON],
        {"metrics": {"val/ssim": 0.61, "test/ssim": 0.60}, **ok},
    )
    fabricate_job(
        tmp_path,
        1,
        ["module.optimizer.lr=0.0001", "model=conv_only", *COMMON],
        {"metrics": {"val/ssim": 0.72, "test/ssim": 0.70}, **ok},
    )
    log = (
        "[2026-01-01 00:00:00,000][framework.runner][INFO] - data: x\n"
        "[2026-01-01 00:00:01,000][run][ERROR] - job failed: RuntimeError: CUDA out of memory\n"
        'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: CUDA out of memory\n'
    )
    fabricate_job(tmp_path, 2, ["module.optimizer.lr=0.001", "model=dad", *COMMON], None, log)
    fabricate_job(
        tmp_path,
        3,
        ["module.optimizer.lr=0.001", "model=conv_only", *COMMON],
        {"metrics": {"val/ssim": 0.9}, "interrupted": True, "fit_seconds": 3.0},
    )
    return tmp_path


def test_every_job_is_reported_with_its_status(sweep_dir):
    jobs = collect(sweep_dir)
    assert [(j.num, j.status) for j in jobs] == [
        (0, "ok"),
        (1, "ok"),
        (2, "failed"),
        (3, "interrupted"),
        (4, "not started"),
        (5, "not started"),
    ]
    assert jobs[2].error == "job failed: RuntimeError: CUDA out of memory"
    assert jobs[4].overrides == {
        "module.optimizer.lr": "0.01",
        "model": "dad",
        **dict(o.split("=") for o in COMMON),
    }


def test_markdown_csv_and_plot(sweep_dir, capsys):
    main([str(sweep_dir)])
    text = (sweep_dir / "report.md").read_text()
    assert capsys.readouterr().out.startswith(text.splitlines()[0])
    assert "2 of 6 jobs finished." in text
    assert "Every job: `experiment=pr_ablation` `trainer.max_epochs=1`" in text
    header = next(line for line in text.splitlines() if line.startswith("| job"))
    assert header == "| job | status | module.optimizer.lr | model | val/ssim | test/ssim | fit s |"
    assert "| 1 | ok | 0.0001 | conv_only | **0.72** | 0.7 | 12.5 |" in text  # the best finished job
    assert "| 3 | interrupted | 0.001 | conv_only | 0.9 |  | 3 |" in text  # not ranked: it did not finish
    assert "- job 2 [failed]" in text and "CUDA out of memory" in text
    assert "- job 5 [not started]: never started" in text
    rows = list(csv.DictReader((sweep_dir / "report.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed", "interrupted", "not started", "not started"]
    assert rows[1]["val/ssim"] == "0.72" and rows[2]["error"].endswith("CUDA out of memory")
    png = (sweep_dir / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def test_error_line_falls_back_to_the_last_line_naming_an_error(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("starting\nValueError: bad value\nshutting down\n")
    assert last_error_line(log) == "ValueError: bad value"
    assert last_error_line(tmp_path / "missing.log") is None


def test_a_dir_without_jobs_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit, match="holds no job of a multirun"):
        main([str(tmp_path)])
