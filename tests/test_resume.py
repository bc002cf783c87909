"""Exact resumption: a fit stopped by a signal and resumed with its last.ckpt ends where an uninterrupted
fit ends (same weights, same validation and test metrics), mid-epoch and at an epoch's end."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.utils.data import Dataset

from datamodules.base import ImageDataModule, ResumableDataLoader
from framework.runner import run
from tests.conftest import compose_config, reproducible, smoke

# Tiny PR-DAD fit: 8 batches an epoch, 3 epochs, 4 validation batches; the noisy measurements draw from the
# global random stream, so the RNG states must be restored too.
EXACT = [
    "logger=csv",
    "trainer.deterministic=true",
    "callbacks.rich_progress_bar=null",
    *smoke("phase_retrieval")["overrides"],
    "data.train_size=256",
    "data.batch_size=32",
    "data.val_size=64",
    "data.eval_batch_size=16",
    "data.test_size=64",
    "trainer.max_epochs=3",
    "module.forward_model.noise=gaussian",
    "module.forward_model.noise_std=0.05",
]
STEPS_PER_EPOCH = 8


class SignalAtStep(Callback):
    """Sends this process ``signum`` once training reaches ``step`` (a kill from outside, made repeatable)."""

    def __init__(self, step: int, signum: int = int(signal.SIGTERM)) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def fit(output_dir: Path, *overrides: str) -> dict[str, Any]:
    run(compose_config([*EXACT, *overrides], output_dir))
    return json.loads((output_dir / "metrics.json").read_text())


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return checkpoint["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    fit(run_dir)
    return run_dir


@pytest.mark.parametrize(
    "stops",
    [
        [(STEPS_PER_EPOCH + 2, signal.SIGTERM), (STEPS_PER_EPOCH + 5, signal.SIGINT)],  # twice in an epoch
        [(STEPS_PER_EPOCH, signal.SIGUSR1)],  # on an epoch's last batch, before its validation
    ],
    ids=["mid_epoch_twice", "epoch_end"],
)
def test_killed_and_resumed_fit_matches_uninterrupted(uninterrupted, tmp_path, stops):
    last = tmp_path / "checkpoints" / "last.ckpt"
    for index, (step, signum) in enumerate(stops):
        stopper = [
            "+callbacks.stop._target_=tests.test_resume.SignalAtStep",
            f"+callbacks.stop.step={step}",
            f"+callbacks.stop.signum={int(signum)}",
        ]
        with pytest.raises(SystemExit, match="interrupted"):
            fit(tmp_path, *stopper, *([f"ckpt_path={last}"] if index else []))
        assert json.loads((tmp_path / "metrics.json").read_text())["interrupted"] is True
        assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == step

    spent = json.loads((tmp_path / "metrics.json").read_text())["fit_seconds"]
    clock = torch.load(last, map_location="cpu", weights_only=True)["callbacks"]["StepTimer"]["fit_seconds"]
    assert 0.0 < clock <= spent  # the checkpoint keeps the fit's time up to its save
    (tmp_path / "metrics.json").unlink()  # as a hard kill leaves a part: no metrics.json of its own
    resumed = fit(tmp_path, f"ckpt_path={last}")
    assert resumed["fit_seconds"] > clock  # a resumed fit reports the time of all its parts
    expected = json.loads((uninterrupted / "metrics.json").read_text())
    assert resumed["interrupted"] is False and resumed["epochs"] == expected["epochs"]
    assert Path(resumed["checkpoints"]["best"]).name == Path(expected["checkpoints"]["best"]).name
    assert set(resumed["metrics"]) == set(expected["metrics"])
    for name, value in reproducible(expected["metrics"]).items():
        assert resumed["metrics"][name] == pytest.approx(value, rel=1e-6, abs=1e-7), name
    final, reference = weights(tmp_path), weights(uninterrupted)
    for name, tensor in reference.items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_last_ckpt_is_the_last_epoch_when_the_metric_stops_improving(tmp_path):
    """Lightning 2.6 writes last.ckpt only beside a new best; callbacks/model_checkpoint.py writes it every
    epoch. Monitoring ``epoch`` with mode min keeps epoch 0 the best."""
    result = fit(tmp_path, "monitor.metric=epoch", "monitor.mode=min", "callbacks.early_stopping=null")
    best = torch.load(result["checkpoints"]["best"], map_location="cpu", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (best["epoch"], best["global_step"]) == (0, STEPS_PER_EPOCH)
    assert (last["epoch"], last["global_step"]) == (2, 3 * STEPS_PER_EPOCH)


class RandomCrops(Dataset):
    """Each item draws from torch's global generator, as a random-crop data set does."""

    def __len__(self) -> int:
        return 22

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"target": torch.full((2,), float(index)) + torch.rand(2)}


def epoch_batches(loader: ResumableDataLoader, epoch: int) -> list[torch.Tensor]:
    loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
    return [batch["target"] for batch in loader]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumable_loader_continues_with_the_next_batch(num_workers):
    datamodule = ImageDataModule(batch_size=4, num_workers=num_workers)
    datamodule.train_set = RandomCrops()
    torch.manual_seed(0)
    loader = datamodule.train_dataloader()
    assert isinstance(loader, ResumableDataLoader) and len(loader) == 5  # drop_last: 22 // 4
    before = torch.get_rng_state()
    reference = {epoch: epoch_batches(loader, epoch) for epoch in (0, 1)}
    assert torch.equal(torch.get_rng_state(), before), "loading drew from the global random stream"
    assert not torch.equal(torch.cat(reference[0]), torch.cat(reference[1]))  # reshuffled every epoch

    loader.progress = lambda: (2, False)  # the trainer has consumed 2 batches of epoch 1
    loader.sampler.set_epoch(1)  # type: ignore[attr-defined]
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batches"] == 2

    torch.manual_seed(123)  # another process, another global state
    resumed = ImageDataModule(batch_size=4, num_workers=num_workers)
    resumed.train_set = RandomCrops()
    new_loader = resumed.train_dataloader()
    new_loader.load_state_dict(state)  # type: ignore[attr-defined]
    rest = [batch["target"] for batch in new_loader]
    assert len(rest) == 3
    for got, want in zip(rest, reference[1][2:], strict=True):
        assert torch.equal(got, want)
    assert all(torch.equal(a, b) for a, b in zip(epoch_batches(new_loader, 1), reference[1], strict=True))
