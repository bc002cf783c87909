"""Safe to kill, clear errors: NaN guard, corrupt checkpoints, atomic writes, signals, resume bookkeeping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from framework.checkpoint_io import AtomicCheckpointIO
from framework.errors import UserError
from framework.results import atomic_write_text
from framework.resume import resume_overrides
from framework.runner import run
from tests.conftest import ROOT


class NaNLoss(nn.Module):
    """A loss that turns NaN at once (stands in for a diverging run)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).square().mean() * float("nan")


def test_nan_loss_stops_with_step_and_checkpoint(make_cfg):
    with pytest.raises(UserError, match=r"loss is nan at step 0: .*last good checkpoint .*nan_policy=skip"):
        run(make_cfg("loss._target_=tests.test_reliability.NaNLoss", "~loss.norm"))


def test_nan_loss_can_skip_steps(make_cfg, tmp_path):
    run(
        make_cfg(
            "loss._target_=tests.test_reliability.NaNLoss",
            "~loss.norm",
            "+module.nan_policy=skip",
            "trainer.limit_train_batches=2",
        )
    )
    assert (tmp_path / "metrics.json").is_file()


def test_atomic_checkpoint_and_corrupt_checkpoint_error(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "a.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(3))
    assert not list(tmp_path.glob(".*.tmp"))
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a kill mid-copy
    with pytest.raises(UserError, match="corrupt or truncated"):
        io.load_checkpoint(path)


def test_atomic_text_write_keeps_old_file_on_failure(tmp_path):
    path = atomic_write_text(tmp_path / "metrics.json", "old")

    class Boom(str):
        def __str__(self):  # pragma: no cover - not reached
            raise RuntimeError

    with pytest.raises(TypeError):
        atomic_write_text(path, 12345)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert not list(tmp_path.glob(".metrics.json.*"))


def test_ckpt_path_last_resolves_and_resumes_in_its_run_dir(tmp_path):
    run_dir = tmp_path / "phase_retrieval" / "default" / "2026-01-01_00-00-00"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    argv = resume_overrides(["ckpt_path=last", "trainer.max_epochs=3"], tmp_path)
    assert f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}" in argv
    assert f"hydra.run.dir={run_dir.resolve()}" in argv
    test_argv = resume_overrides(["ckpt_path=last", "stage=test"], tmp_path)
    assert not any(a.startswith("hydra.run.dir") for a in test_argv)
    with pytest.raises(UserError, match="found no"):
        resume_overrides(["ckpt_path=last", "experiment=nothing"], tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_saves_checkpoint_and_exits_cleanly(sig, tmp_path):
    args = [
        sys.executable,
        str(ROOT / "run.py"),
        "logger=csv",
        "callbacks.rich_progress_bar=null",
        "data.train_size=2048",
        "data.val_size=64",
        "data.test_size=64",
        "data.batch_size=32",
        "trainer.max_epochs=100",
        f"hydra.run.dir={tmp_path}",
    ]
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline"},
    )
    deadline = time.time() + 120
    while not (tmp_path / "checkpoints" / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.5)  # the first epoch's checkpoint: training is under way
    process.send_signal(sig)
    output, _ = process.communicate(timeout=120)
    assert "stopped by a signal" in output, output[-3000:]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] > 0 and checkpoint["epoch"] < 99
    assert "Traceback" not in output
    assert json.loads((tmp_path / "metrics.json").read_text())["stage"] == "fit"
