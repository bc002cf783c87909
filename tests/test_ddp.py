"""``trainer=ddp_cpu`` (2 spawned processes over gloo): a fit runs end to end, the test metrics of one
checkpoint equal one process's (per-sample means, data-set metrics such as PR's psnr_paper and the loss are
synced over all images, each image counted once), only rank 0 writes the run's files, and DDP works inside a
multirun. Tolerance: relative 1e-5 (float32 sums in another order)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from framework.runner import run
from tests.conftest import run_cli, smoke, task_names

QUIET = ["logger=csv", "callbacks.rich_progress_bar=null"]
RTOL = 1e-5


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def scored(run_dir: Path) -> dict[str, float]:
    return {k: v for k, v in results(run_dir)["metrics"].items() if k.startswith("test")}


def cli(*args: str, run_dir: Path) -> None:
    result = run_cli(*args, *QUIET, f"hydra.run.dir={run_dir}", env={"OMP_NUM_THREADS": "1"}, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("task", task_names())
def test_ddp_cpu_fits_and_tests_like_one_process(task, tmp_path):
    tiny = [f"task={task}", *smoke(task)["overrides"]]
    fit = tmp_path / "ddp_fit"
    cli(*tiny, "trainer=ddp_cpu", run_dir=fit)
    fitted = results(fit)
    assert fitted["interrupted"] is False and fitted["epochs"] == 1
    assert all(math.isfinite(v) for v in fitted["metrics"].values())
    assert sorted(p.name for p in (fit / "checkpoints").iterdir())[-1] == "last.ckpt"
    assert len(list((fit / "checkpoints").glob("best-*.ckpt"))) == 1
    with (fit / "csv" / "metrics.csv").open() as handle:  # fit and test rows in one file (both spawns)
        header = next(csv.reader(handle))
    assert any(k.startswith("val/") for k in header) and any(k.startswith("test") for k in header)
    assert sorted(p.name for p in fit.iterdir() if not p.name.startswith(".")) == sorted(
        ["checkpoints", "config_resolved.yaml", "csv", "images", "metrics.json", "metrics.md", "run.log"]
    )

    best = fitted["checkpoints"]["best"]
    cli(*tiny, "stage=test", f"ckpt_path={best}", "trainer=ddp_cpu", run_dir=tmp_path / "ddp_test")
    cli(*tiny, "stage=test", f"ckpt_path={best}", run_dir=tmp_path / "one_test")
    ddp, one = scored(tmp_path / "ddp_test"), scored(tmp_path / "one_test")
    assert set(ddp) == set(one) and any(k.endswith("/loss") or k == "test/loss" for k in ddp)
    for name, value in one.items():
        assert ddp[name] == pytest.approx(value, rel=RTOL, abs=1e-7), name


@pytest.mark.slow
def test_ddp_cpu_inside_a_multirun(tmp_path):
    result = run_cli(
        "-m",
        "trainer=ddp_cpu",
        "stage=test",
        "model=er",
        "++model.iterations=2",
        "++model.restarts=1",
        "data.test_size=8",
        "seed=1,2",
        *QUIET,
        f"hydra.sweep.dir={tmp_path}",
        env={"OMP_NUM_THREADS": "1"},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.parent.name for p in tmp_path.glob("*/metrics.json")) == ["0", "1"]
    assert results(tmp_path / "0")["n_test"] == 8


def test_only_rank_zero_writes_the_run_files(make_cfg, tmp_path, monkeypatch):
    """A rank other than 0 (SLURM / torchrun start every rank through this runner) writes no config, no
    results and no W&B id; rank 0 does."""
    overrides = ("stage=test", "model=er", "model.iterations=2", "callbacks.image_logger=null")
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    run(make_cfg(*overrides, output_dir=tmp_path / "rank1"))
    assert not (tmp_path / "rank1" / "metrics.json").exists()
    assert not (tmp_path / "rank1" / "config_resolved.yaml").exists()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    run(make_cfg(*overrides, output_dir=tmp_path / "rank0"))
    assert (tmp_path / "rank0" / "metrics.json").is_file()
    assert (tmp_path / "rank0" / "config_resolved.yaml").is_file()


def test_sync_batchnorm_on_cpu_is_a_one_line_error(make_cfg):
    from framework.errors import UserError

    with pytest.raises(UserError, match="sync_batchnorm=true needs GPUs"):
        run(make_cfg("trainer=ddp_cpu", "trainer.sync_batchnorm=true"))
