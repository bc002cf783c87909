"""Lightning's ``ModelCheckpoint`` with ``save_last=True`` meaning what it meant before Lightning 2.6: a
``last.ckpt`` of the latest state at every checkpointing point (each validation's end, or each training
epoch's end when there is no validation), whether or not a top-k checkpoint is saved there too.

Lightning 2.6 writes ``last.ckpt`` only when it saves a top-k checkpoint at the same step. With
``save_top_k: 1`` a fit whose monitored metric stopped improving then kept an old ``last.ckpt``: a
style-transfer run of 3 epochs, best at epoch 0, ended with ``last.ckpt`` at epoch 0, so a resume
(``ckpt_path=last``, a requeued SLURM job, ``resume_interrupted``) would have trained epochs 1 and 2 again
(other projects met the same: openclimatefix/pvnet#544).
"""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """``lightning.pytorch.callbacks.ModelCheckpoint`` whose ``save_last=True`` saves ``last.ckpt`` at every
    checkpointing point (see the module docstring). Same class name, so the state it keeps in a checkpoint
    has Lightning's key and older checkpoints resume into it."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def _save_last_if_not_saved(self, trainer: Trainer) -> None:
        # skipped as Lightning skips: outside a fit, in the sanity check, or when this step is saved already
        if self.save_last is True and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
