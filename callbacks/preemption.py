"""Safe to kill: SIGTERM, SIGINT (Ctrl+C) and SLURM's SIGUSR1 save ``last.ckpt`` and end the run cleanly.

During a fit this callback handles the three signals itself: the first one asks Lightning to stop after the
current training batch (a signal during validation waits for the validation to finish, so that epoch's
metrics are whole), then the checkpoint is written and the run says how to resume. A second Ctrl+C stops at
once, without a checkpoint (the previous ``last.ckpt`` is kept). The checkpoint holds everything a resumed
fit needs to continue exactly: weights, optimiser, scheduler, loop counters, the loader's position and the
random states.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
Handler = Any  # what signal.getsignal returns: a callable, SIG_DFL, SIG_IGN or None


class PreemptionCheckpoint(Callback):
    """Save ``<dirpath>/last.ckpt`` when a fit is stopped by SIGTERM, SIGINT or SIGUSR1."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.saved_path: Path | None = None
        self.received: str | None = None  # name of the first signal of this fit
        self._trainer: Trainer | None = None
        self._previous: dict[int, Handler] = {}
        self._deferred = False  # a signal came during validation: stop once it ends
        self._training_started = False

    # -- the handler -----------------------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        trainer = self._trainer
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl+C: stop now (no checkpoint; last.ckpt is kept)
        self.received = self.received or signal.Signals(signum).name
        log.warning("received %s: stopping after the current batch", signal.Signals(signum).name)
        if trainer is None:
            return
        if trainer.validating or trainer.sanity_checking:
            self._deferred = True
        else:
            trainer._signal_connector.received_sigterm = True

    def _install(self, trainer: Trainer) -> None:
        """Take the three signals (after Lightning has registered its own SIGTERM handler)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._trainer = trainer
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if current != self._handle:
                self._previous.setdefault(signum, current)
                signal.signal(signum, self._handle)

    def _uninstall(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum, previous in self._previous.items():
                if signal.getsignal(signum) == self._handle:
                    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous, self._trainer = {}, None

    # -- hooks -----------------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self.saved_path, self.received, self._deferred, self._training_started = None, None, False, False

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._install(trainer)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._install(trainer)
        self._training_started = True

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and trainer._signal_connector.received_sigterm:
            # asked to stop on the last training batch before validation: validate first, then stop
            trainer._signal_connector.received_sigterm = False
            self._deferred = True

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._deferred:
            self._deferred = False
            trainer._signal_connector.received_sigterm = True

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if (
            not isinstance(exception, SIGTERMException | KeyboardInterrupt)
            or trainer.state.fn != TrainerFn.FITTING
        ):
            return
        self.received = self.received or ("SIGINT" if isinstance(exception, KeyboardInterrupt) else "SIGTERM")
        if isinstance(exception, KeyboardInterrupt) or not self._training_started:
            # mid-step (a second Ctrl+C) or before the resumed state is in place: a checkpoint now could be
            # inconsistent and would replace a good last.ckpt
            message = f"stopped by {self.received} at step {trainer.global_step}: no checkpoint written"
            last = self.dirpath / "last.ckpt"
            message += f"; resume from {last} with ckpt_path=last" if last.is_file() else ""
        else:
            self.saved_path = self.dirpath / "last.ckpt"
            for callback in trainer.checkpoint_callbacks:
                # ModelCheckpoint(save_last) of the same folder: this is its last.ckpt now (it is in the
                # saved state), so the resumed fit overwrites it instead of writing last-v1.ckpt beside it
                if (
                    isinstance(callback, ModelCheckpoint)
                    and callback.save_last
                    and callback.dirpath
                    and Path(callback.dirpath).resolve() == self.dirpath.resolve()
                ):
                    callback.last_model_path = str(self.saved_path)
            trainer.save_checkpoint(self.saved_path)
            message = (
                f"stopped by a signal ({self.received}) at step {trainer.global_step}: saved "
                f"{self.saved_path}; resume with ckpt_path=last"
            )
        log.warning(message)
        print(message, flush=True)
        self._uninstall()  # Lightning calls no teardown hook after an exception

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self._uninstall()

    def state_dict(self) -> dict[str, Any]:
        return {}
