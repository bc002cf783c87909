"""callbacks/preemption.py on every Lightning upgrade: the one private flag it sets still exists and still
stops a fit the way the callback needs (after the current batch, after a validation that follows it). In
process and tiny (seconds); the run-level behaviour is tests/test_reliability.py and tests/test_resume.py."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, TensorDataset

from callbacks.preemption import PreemptionCheckpoint, request_lightning_stop

BATCHES = 4  # training batches per epoch
UPGRADE = (
    "callbacks/preemption.py relies on Lightning's private trainer._signal_connector.received_sigterm "
    "(tested with lightning 2.6): this Lightning changed it; fix request_lightning_stop, then widen the pin "
    "in pyproject.toml"
)


class Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).square().mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.layer(batch[0]).square().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(4 * BATCHES, 2)), batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=4)  # 3 batches


class Kill(Callback):
    """Sends this process ``signums`` when training reaches ``step`` (or in the first validation batch)."""

    def __init__(self, signums: list[int], step: int | None = None) -> None:
        self.signums, self.step, self.sent = signums, step, False

    def _send(self) -> None:
        if not self.sent:
            self.sent = True
            for signum in self.signums:
                os.kill(os.getpid(), signum)

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            self._send()

    def on_validation_batch_end(self, trainer: Trainer, *args: Any) -> None:
        if self.step is None and not trainer.sanity_checking:
            self._send()


def fit(tmp_path: Path, kill: Kill) -> tuple[Trainer, dict[str, Any] | None]:
    trainer = Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[PreemptionCheckpoint(str(tmp_path)), kill],
    )
    with pytest.raises((SIGTERMException, SystemExit)):
        trainer.fit(Tiny())
    last = tmp_path / "last.ckpt"
    return trainer, torch.load(last, weights_only=True) if last.is_file() else None


def test_private_stop_flag_still_exists_and_is_what_lightning_reads() -> None:
    trainer = Trainer(logger=False, enable_progress_bar=False)
    assert hasattr(trainer, "_signal_connector"), UPGRADE
    assert hasattr(trainer._signal_connector, "received_sigterm"), UPGRADE
    assert trainer.received_sigterm is False, UPGRADE
    request_lightning_stop(trainer)
    assert trainer.received_sigterm is True, UPGRADE  # the public property the loops check
    request_lightning_stop(trainer, False)
    assert trainer.received_sigterm is False, UPGRADE


def test_signal_stops_after_the_current_batch_with_a_checkpoint(tmp_path: Path) -> None:
    trainer, checkpoint = fit(tmp_path, Kill([signal.SIGTERM], step=BATCHES + 2))  # mid epoch 1
    assert trainer.state.status == TrainerStatus.INTERRUPTED, UPGRADE
    assert checkpoint is not None and checkpoint["global_step"] == BATCHES + 2, UPGRADE
    assert checkpoint["epoch"] == 1


def test_signal_in_an_epochs_last_batch_lets_its_validation_finish(tmp_path: Path) -> None:
    trainer, checkpoint = fit(tmp_path, Kill([signal.SIGUSR1], step=BATCHES))
    assert trainer.state.status == TrainerStatus.INTERRUPTED, UPGRADE
    assert checkpoint is not None and checkpoint["global_step"] == BATCHES, UPGRADE
    val = checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["current"]
    assert val["completed"] == 3, UPGRADE  # the whole validation ran before the stop
    assert checkpoint["epoch"] == 1  # epoch 0 is complete


def test_signal_during_validation_waits_for_it(tmp_path: Path) -> None:
    _, checkpoint = fit(tmp_path, Kill([signal.SIGTERM]))
    assert checkpoint is not None and checkpoint["global_step"] == BATCHES, UPGRADE
    val = checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["current"]
    assert val["completed"] == 3, UPGRADE


def test_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path: Path) -> None:
    trainer, checkpoint = fit(tmp_path, Kill([signal.SIGINT, signal.SIGINT], step=2))
    assert trainer.state.status == TrainerStatus.INTERRUPTED
    assert checkpoint is None  # stopped mid-step: nothing written
