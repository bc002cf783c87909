"""Named ablation multiruns (``experiment=<task>_ablation``): every job of every experiment that declares
``hydra.sweeper.params`` composes and validates, and a tiny one runs through ``run.py`` one job per cell."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from framework.sweeps import sweep_jobs
from framework.validate import validate_config
from tests.conftest import CONF_DIR, ROOT, claimed, compose_config, run_cli, smoke

SWEEPS = [
    (task, name, overrides)
    for task, name, overrides in claimed("experiment")
    if OmegaConf.select(OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml"), "hydra.sweeper.params")
]


def jobs_of(name: str, *arguments: str) -> list[list[str]]:
    params = OmegaConf.load(CONF_DIR / "experiment" / f"{name}.yaml").hydra.sweeper.params
    return sweep_jobs(OmegaConf.to_container(params), [f"experiment={name}", *arguments])


def test_the_named_ablations_are_sweeps():
    names = {name for _, name, _ in SWEEPS}
    assert {"pr_ablation", "sr_ablation", "seg_ablation", "style_ablation", "autocorrect_ablation"} <= names
    assert len(jobs_of("pr_ablation")) == 10  # 3 decoders x (none, idct, ifft) + conv-only
    assert len(jobs_of("sr_ablation")) == 12  # 3 VGG weights x de-block off / on x 2 scales
    assert len(jobs_of("seg_ablation")) == 8  # 4 Jaccard weights x 2 backbones
    assert len(jobs_of("style_ablation")) == 6  # 3 style weights x 2 start images
    assert len(jobs_of("autocorrect_ablation")) == 8  # 4 transforms x 2 losses


def test_sweep_expansion_follows_hydra_and_the_command_line_narrows_it():
    jobs = jobs_of("pr_ablation", "pr_ablation=haar,conv_only", "trainer.max_epochs=1")
    assert jobs == [
        ["pr_ablation=haar", "experiment=pr_ablation", "trainer.max_epochs=1"],
        ["pr_ablation=conv_only", "experiment=pr_ablation", "trainer.max_epochs=1"],
    ]


@pytest.mark.parametrize(("task", "name", "overrides"), SWEEPS)
def test_every_job_of_a_named_sweep_composes_and_validates(task, name, overrides, tmp_path):
    """... and no two jobs run the same thing (what is built: the module with its net and loss, the data,
    the trainer)."""
    built = set()
    jobs = jobs_of(name, *overrides)
    for job in jobs:
        cfg = compose_config([f"task={task}", *job], tmp_path)
        validate_config(cfg)
        parts = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("module", "data", "trainer")}
        built.add(json.dumps(parts, sort_keys=True, default=str))
    assert len(built) == len(jobs)


def test_pr_ablation_cells_are_the_factorial_and_conv_only(tmp_path):
    cells = set()
    for job in jobs_of("pr_ablation"):
        net = compose_config(job, tmp_path).module.net
        cells.add((net._target_.rsplit(".", 1)[1], net.get("decoder"), net.get("inverse_transform")))
    assert cells == {
        ("PRDADWaveletPacket", decoder, transform)
        for decoder in ("haar", "identity", "shuffle")
        for transform in ("none", "idct", "ifft")
    } | {("ConvOnlyPR", None, None)}


def test_sr_ablation_sweeps_vgg_weight_deblocking_and_scale(tmp_path):
    cells = set()
    for job in jobs_of("sr_ablation"):
        cfg = compose_config(job, tmp_path)
        assert cfg.module.jpeg_quality == [20, 40] and cfg.data.crop_size % cfg.data.scale == 0
        cells.add((cfg.loss.content_weight, cfg.model._target_.rsplit(".", 1)[1], cfg.data.scale))
    assert cells == {
        (weight, net, scale)
        for weight in (0.0, 2.0e-4, 1.0e-3)
        for net in ("espcn", "DeblockThenSR")
        for scale in (3, 4)
    }


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, env=dict(os.environ)
    )


def tiny_pr_ablation(tmp_path, cells: str | None = None):
    """`python run.py -m experiment=pr_ablation <smoke sizes>` into ``tmp_path`` (``cells`` narrows it)."""
    return run_cli(
        "-m",
        "experiment=pr_ablation",
        *([f"pr_ablation={cells}"] if cells else []),
        *smoke("phase_retrieval")["overrides"],
        "trainer.limit_train_batches=2",
        "logger=csv",
        "callbacks.rich_progress_bar=null",
        "callbacks.image_logger=null",
        f"hydra.sweep.dir={tmp_path}",
        env={"OMP_NUM_THREADS": "1"},
        timeout=900,
    )


def test_a_narrowed_pr_ablation_runs_one_job_per_cell(tmp_path):
    result = tiny_pr_ablation(tmp_path, "identity_idct,conv_only")
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(tmp_path.glob("*/metrics.json"))
    assert [p.parent.name for p in runs] == ["0", "1"]
    models = [json.loads(p.read_text())["model"] for p in runs]
    assert models == ["models.prdad.PRDADWaveletPacket", "models.prdad_ablations.ConvOnlyPR"]
    job0 = OmegaConf.load(tmp_path / "0" / ".hydra" / "config.yaml")
    assert (job0.model.decoder, job0.model.inverse_transform) == ("identity", "idct")


@pytest.mark.slow
def test_the_whole_pr_ablation_runs_tiny(tmp_path):
    result = tiny_pr_ablation(tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list(tmp_path.glob("*/metrics.json"))) == 10


def test_a_crashed_job_is_reported_and_the_sweep_goes_on(tmp_path):
    result = run_cli(
        "-m",
        "stage=test",
        "model=er",
        "++model.iterations=2",
        "++model.restarts=1",
        "data.test_size=8",
        "logger=csv",
        "++trainer.profiler=bogus,null",  # job 0: Lightning refuses the profiler when the Trainer is built
        f"hydra.sweep.dir={tmp_path}",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "0" / "metrics.json").exists()
    assert (tmp_path / "1" / "metrics.json").is_file()
    report = run_module("scripts.report", str(tmp_path))
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "report.md").read_text()
    assert "1 of 2 jobs finished." in text
    failed = next(line for line in text.splitlines() if line.startswith("- job 0 [failed]"))
    assert "job failed: MisconfigurationException:" in failed and "`profiler`" in failed
