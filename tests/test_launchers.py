"""Launchers and what a launched job needs: the SLURM settings as sbatch receives them, a preempted SLURM job
checkpointed, requeued and resumed in its own run dir, W&B groups per sweep, parallel local jobs (joblib)."""

from __future__ import annotations

import json
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import pytest
import submitit
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch import Callback, Trainer
from omegaconf import OmegaConf, open_dict

from framework.runner import run
from tests.conftest import CONF_DIR, run_cli


def compose_with_hydra(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


class Captured(Exception):
    """Raised by the stand-in for submitit's submission: the executor is ready, nothing is submitted."""


def test_slurm_launcher_settings_reach_sbatch(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"  # submitit refuses to build a SLURM executor where no `srun` is on PATH
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    cfg = compose_with_hydra(
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.nodes=2",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.timeout_min=600",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    HydraConfig.instance().set_config(cfg)
    launcher = hydra.utils.instantiate(cfg.hydra.launcher)
    launcher.config = cfg
    captured: dict[str, Any] = {}

    def capture(executor, *args, **kwargs):
        captured["executor"] = executor
        raise Captured

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    with pytest.raises(Captured):
        launcher.launch([["stage=test"]], initial_job_idx=0)  # the plugin's own mapping of our settings
    slurm = captured["executor"]._executor
    script = slurm._make_submission_file_text("python -u -m submitit.core._submit x", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --ntasks-per-node=4",  # one task per GPU: DDP ranks from SLURM
        "#SBATCH --time=600",
        "#SBATCH --signal=USR1@120",  # the preemption callback's signal, 2 minutes before the kill
        "export SUBMITIT_PREEMPT_SIGNAL=USR1",
    ):
        assert line in script.splitlines(), f"{line!r} not in\n{script}"
    assert slurm.max_num_timeout == 3


def test_cfg_hydra_shows_the_slurm_settings():
    result = run_cli("--cfg", "hydra", "hydra/launcher=submitit_slurm")
    assert result.returncode == 0, result.stderr[-2000:]
    launcher = OmegaConf.create(result.stdout).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert {"partition", "nodes", "gpus_per_node", "timeout_min", "max_num_timeout"} <= set(launcher)
    assert launcher.setup == ["export SUBMITIT_PREEMPT_SIGNAL=USR1"]
    assert launcher.additional_parameters.signal == "USR1@120" and launcher.max_num_timeout == 3
    assert "deprecated" not in result.stderr  # our file replaces the plugin's defaults without a notice


def test_cfg_job_resolve_prints_the_resolved_config():
    """`--cfg job --resolve` runs no job, so there is no run directory: the W&B run id stays unset (it
    raised a TypeError) and the interpolations of the experiment resolve."""
    result = run_cli("--cfg", "job", "--resolve", "experiment=prdad_haar", "trainer.max_epochs=30")
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = OmegaConf.create(result.stdout)
    assert cfg.logger.wandb.id is None
    assert cfg.callbacks.early_stopping.patience == 30  # ${trainer.max_epochs}


@pytest.mark.parametrize("mode", [RunMode.RUN, RunMode.MULTIRUN])
def test_wandb_runs_of_one_sweep_share_a_group(mode, tmp_path):
    sweep = tmp_path / "multirun" / "2026-01-02_03-04-05"
    cfg = compose_with_hydra("experiment=pr_ablation", "logger=wandb", f"hydra.sweep.dir={sweep}")
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.job.num = 3
        cfg.hydra.runtime.output_dir = str(sweep / "3")
    HydraConfig.instance().set_config(cfg)
    wandb = cfg.logger.wandb
    if mode == RunMode.RUN:
        assert wandb.group == "phase_retrieval/pr_ablation"
        assert not wandb.name.endswith("-3")
    else:
        assert wandb.group == "phase_retrieval/pr_ablation/2026-01-02_03-04-05"
        assert wandb.name.startswith("phase_retrieval-pr_ablation-") and wandb.name.endswith("-3")


class Preempt(Callback):
    """Sends this process SIGUSR1 (SLURM's warning before a preemption) once, at the given global step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if trainer.global_step == self.step and not trainer.sanity_checking:
            os.kill(os.getpid(), signal.SIGUSR1)


def test_a_preempted_slurm_job_is_checkpointed_requeued_and_resumed(make_cfg, tmp_path):
    """The SIGUSR1 handler submitit installs in a SLURM job (a stand-in here) is called once the run has
    saved last.ckpt and written metrics.json; the requeued job (same config, same run dir) resumes it."""
    calls: list[dict] = []

    def submitit_handler(signum, frame):  # submitit: requeue the job, then exit
        calls.append(json.loads((tmp_path / "metrics.json").read_text()))
        raise SystemExit(-1)

    previous = signal.signal(signal.SIGUSR1, submitit_handler)
    try:
        cfg = make_cfg(
            "trainer.max_epochs=2",
            "+callbacks.preempt._target_=tests.test_launchers.Preempt",
            "+callbacks.preempt.step=3",
        )
        with pytest.raises(SystemExit) as exit_info:
            run(cfg)
        assert exit_info.value.code == -1  # submitit's exit: the job was handed over for its requeue
        assert len(calls) == 1 and calls[0]["interrupted"] is True
        assert signal.getsignal(signal.SIGUSR1) is submitit_handler  # ours is uninstalled after the fit
        saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
        assert saved["global_step"] == 3

        with open_dict(cfg):
            cfg.callbacks.preempt = None  # the requeued job: the same run, not preempted again
        run(cfg)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert results["interrupted"] is False and results["epochs"] == 2
    assert results["tested_checkpoint"]  # fit finished, then tested
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert final["global_step"] == 2 * 8  # 512 / 64 batches an epoch: resumed at step 3, not restarted
    assert len(calls) == 1


@pytest.mark.slow
def test_joblib_runs_two_jobs_in_parallel(tmp_path):
    result = run_cli(
        "-m",
        "stage=test",
        "model=er,hio",
        "++model.iterations=200",
        "++model.restarts=1",
        "data.test_size=32",
        "logger=csv",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={tmp_path}",
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]

    def span(job: Path) -> tuple[datetime, datetime]:
        lines = (job / "run.log").read_text().splitlines()
        stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f") for line in (lines[0], lines[-1])]
        return stamps[0], stamps[1]

    (start0, end0), (start1, end1) = span(tmp_path / "0"), span(tmp_path / "1")
    assert start0 < end1 and start1 < end0, "the two jobs did not overlap"
    for job in ("0", "1"):
        results = json.loads((tmp_path / job / "metrics.json").read_text())
        assert results["output_dir"] == str(tmp_path / job)  # each job in its own dir, not the worker's cwd
