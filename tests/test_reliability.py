"""Safe to kill, clear errors: NaN guard, corrupt checkpoints, atomic writes, signals, resume bookkeeping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from framework.checkpoint_io import AtomicCheckpointIO
from framework.errors import UserError
from framework.results import atomic_write_text
from framework.resume import resume_overrides
from framework.runner import run
from tests.conftest import ROOT, reproducible, run_cli


class NaNLoss(nn.Module):
    """A loss that turns NaN at once (stands in for a diverging run)."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).square().mean() * float("nan")


# a small PR-DAD run with CSV logs and no progress bar (the subprocess tests' common arguments)
SMALL_RUN = [
    "logger=csv",
    "callbacks.rich_progress_bar=null",
    "data.train_size=512",
    "data.val_size=64",
    "data.test_size=64",
    "data.batch_size=32",
    "data.eval_batch_size=32",
]


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


def test_atomic_checkpoint_and_corrupt_checkpoint_error(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "a.ckpt"
    weights = torch.arange(4096.0)  # most of the file: its middle is tensor data
    io.save_checkpoint({"state_dict": {"w": weights}}, path)
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], weights)
    assert not list(tmp_path.glob(".*.tmp"))
    good = path.read_bytes()

    def dies_halfway(obj: object, handle: Any) -> None:  # a kill in the middle of writing
        handle.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good and not list(tmp_path.glob(".*.tmp"))  # the old one is intact

    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF  # bit rot inside a record: caught by its CRC
    path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match=r"is corrupt \(record .* fails its checksum\)"):
        io.load_checkpoint(path)
    path.write_bytes(good[:100])  # truncated, as by a kill mid-copy
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


def fake_run_dir(run_dir: Path) -> Path:
    """A run directory as Hydra and the checkpoint callback leave it: .hydra/ and checkpoints/last.ckpt."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return run_dir


def test_ckpt_path_last_resolves_and_resumes_in_its_run_dir(tmp_path):
    run_dir = fake_run_dir(tmp_path / "phase_retrieval" / "default" / "2026-01-01_00-00-00")
    argv = resume_overrides(["ckpt_path=last", "trainer.max_epochs=3"], tmp_path)
    assert f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}" in argv
    assert f"hydra.run.dir={run_dir.resolve()}" in argv
    test_argv = resume_overrides(["ckpt_path=last", "stage=test"], tmp_path)
    assert not any(a.startswith("hydra.run.dir") for a in test_argv)
    with pytest.raises(UserError, match="found no"):
        resume_overrides(["ckpt_path=last", "experiment_name=nothing"], tmp_path)
    # presets that set the experiment name (debug=...) are looked up under that name
    debug_run = fake_run_dir(tmp_path / "phase_retrieval" / "debug" / "2026-01-02_00-00-00")
    argv = resume_overrides(["ckpt_path=last", "debug=default"], tmp_path)
    assert f"ckpt_path={debug_run / 'checkpoints' / 'last.ckpt'}" in argv


class TrainingMarker(Callback):
    """Touches ``path`` once training has done ``steps`` optimiser steps, and slows each batch by
    ``delay`` seconds, so a test can signal a run that is surely mid-training."""

    def __init__(self, path: str, steps: int = 2, delay: float = 0.05) -> None:
        self.path, self.steps, self.delay = Path(path), steps, delay

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        time.sleep(self.delay)
        if trainer.global_step >= self.steps and not self.path.exists():
            self.path.touch()


def start_fit(run_dir: Path, *extra: str) -> subprocess.Popen:
    marker = run_dir.parent / f"{run_dir.name}.training"
    args = [
        sys.executable,
        str(ROOT / "run.py"),
        *SMALL_RUN,
        "trainer.max_epochs=100",
        "+callbacks.marker._target_=tests.test_reliability.TrainingMarker",
        f"+callbacks.marker.path={marker}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    return subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"},
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before training started:\n{process.communicate()[0][-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("training did not start in time")
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1], ids=lambda s: s.name)
def test_signal_saves_checkpoint_and_exits_cleanly(sig, tmp_path):
    run_dir = tmp_path / "run"
    process = start_fit(run_dir)
    wait_for(tmp_path / "run.training", process)
    process.send_signal(sig)
    output, _ = process.communicate(timeout=180)
    assert f"stopped by a signal ({sig.name})" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert process.returncode == 1 and "interrupted: results so far in" in output
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] >= 2 and checkpoint["epoch"] < 99
    results = json.loads((run_dir / "metrics.json").read_text())
    assert results["stage"] == "fit" and results["interrupted"] is True
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))
    if sig != signal.SIGTERM:
        return
    # resuming from it continues the same run in the same directory, from the saved step
    result = run_cli(
        f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
        *SMALL_RUN,
        f"trainer.max_epochs={checkpoint['epoch'] + 1}",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["interrupted"] is False and resumed["epochs"] == checkpoint["epoch"] + 1
    assert "test/ssim_dr2" in resumed["metrics"]
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert final["global_step"] == 16 * (checkpoint["epoch"] + 1)  # 512 / 32 batches an epoch


class SignalDuringValidation(Callback):
    def __init__(self) -> None:
        self.sent = False

    def on_validation_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if not trainer.sanity_checking and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def test_signal_during_validation_stops_after_it(make_cfg, tmp_path):
    cfg = make_cfg(
        "trainer.max_epochs=3",
        "data.eval_batch_size=32",  # 4 validation batches
        "+callbacks.stop._target_=tests.test_reliability.SignalDuringValidation",
    )
    with pytest.raises(SystemExit, match="interrupted"):
        run(cfg)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    val_progress = checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["current"]
    assert val_progress["completed"] == 4  # the whole validation ran before the stop
    assert checkpoint["global_step"] == 8 and checkpoint["epoch"] == 1  # stopped once epoch 0 was over


@pytest.mark.parametrize("stage", ["fit", "test"])
def test_corrupt_checkpoint_given_to_run_is_a_one_line_error(stage, make_cfg, tmp_path):
    corrupt = tmp_path / "last.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 half a checkpoint")  # the start of a zip, cut short
    with pytest.raises(
        UserError, match=r"checkpoint '.*last.ckpt' is corrupt or truncated .*use another one"
    ):
        run(make_cfg(f"stage={stage}", f"ckpt_path={corrupt}", output_dir=tmp_path / "run"))


def test_corrupt_checkpoint_on_the_command_line(tmp_path):
    corrupt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"\x00" * 64)
    result = run_cli(f"ckpt_path={corrupt}", "logger=csv", "data.train_size=64", "data.val_size=64")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: checkpoint '{corrupt}' is corrupt")
    assert corrupt.read_bytes() == b"\x00" * 64  # left as it was


def test_same_command_twice_gives_the_same_metrics(make_cfg, tmp_path):
    """Seeds + deterministic mode: two identical CPU runs agree exactly."""
    results = []
    for name in ("first", "second"):
        run(make_cfg("trainer.max_epochs=1", "data.train_size=256", output_dir=tmp_path / name))
        results.append(json.loads((tmp_path / name / "metrics.json").read_text())["metrics"])
    assert reproducible(results[0]) == reproducible(results[1])
