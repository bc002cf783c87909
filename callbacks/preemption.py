"""Safe to kill: SIGTERM, SIGINT (Ctrl+C) and SLURM's SIGUSR1 save ``last.ckpt`` and end the run cleanly.

Lightning turns SIGTERM into a clean stop after the current batch; this callback routes SIGUSR1 the same
way, then, when the run stops on any of the three, writes the checkpoint and says how to resume.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class PreemptionCheckpoint(Callback):
    """Save ``<dirpath>/last.ckpt`` when training is stopped by a signal."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.saved_path: Path | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit" and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
            signal.signal(
                signal.SIGUSR1, lambda *_: setattr(trainer._signal_connector, "received_sigterm", True)
            )

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if (
            not isinstance(exception, SIGTERMException | KeyboardInterrupt)
            or trainer.state.fn != TrainerFn.FITTING
        ):
            return
        self.saved_path = self.dirpath / "last.ckpt"
        trainer.save_checkpoint(self.saved_path)
        step = trainer.global_step
        message = f"stopped by a signal at step {step}: saved {self.saved_path}; resume with ckpt_path=last"
        log.warning(message)
        print(message, flush=True)

    def state_dict(self) -> dict[str, Any]:
        return {}
