"""PR-DAD II (Dekel & Gugel, ICFSP 2022) in one run: three training stages switched by epoch.

1. ``"autoencoder"`` (epochs ``[0, ae_epochs)``): the :class:`~models.prdad.ConvAutoEncoder` learns clean
   images, ``L = rot180_L2(D(E(x)), x) + sparsity_weight * mean|E(x)|``.
2. ``"mapping"`` (the next ``mapping_epochs``): the auto-encoder is frozen (``requires_grad=False`` and eval
   mode, so its BatchNorm statistics stay put); the predictor (MLP + ConvNet) learns ``y -> code`` with
   ``L = code_weight * min(MSE(c, E(x)), MSE(c, E(R180 x))) + mapping_image_weight * loss(D(c), x)``:
   ``y`` cannot tell ``x`` from ``R180(x)``, so each sample is matched with the closer orientation's code.
3. ``"finetune"`` (the remaining epochs, up to ``trainer.max_epochs``): everything trainable, the task's
   image loss on ``D(MLP(y))`` only.

Validation, test and predict always run the ``y -> x_hat`` path, so val metrics of stage 1 are poor; the
best checkpoint comes from a later stage. One optimizer (and one OneCycleLR over the whole run) holds every
parameter: a frozen or unused part gets no gradient, and AdamW skips it (no weight decay either).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from framework.errors import UserError
from lightning_modules.base import OptimizerFactory, SchedulerFactory
from lightning_modules.phase_retrieval import PhaseRetrievalModule
from losses.rot180 import per_sample_error, rot180_invariant_error
from models.prdad import PRDADAutoEncoder
from operators.fourier import FourierMagnitude, rot180

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("autoencoder", "mapping", "finetune")


class PRDADAutoEncoderModule(PhaseRetrievalModule):
    """:class:`PhaseRetrievalModule` with PR-DAD II's staged training of a :class:`PRDADAutoEncoder`."""

    def __init__(
        self,
        net: nn.Module,
        forward_model: FourierMagnitude,
        loss: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        task_name: str = "phase_retrieval",
        nan_policy: str = "stop",
        ae_epochs: int = 5,
        mapping_epochs: int = 10,
        sparsity_weight: float = 1e-4,
        code_weight: float = 1.0,
        mapping_image_weight: float = 0.0,
        image_size: int = 32,
        channels_last: bool = False,
    ) -> None:
        if not isinstance(net, PRDADAutoEncoder):
            raise UserError(
                f"PRDADAutoEncoderModule trains a PRDADAutoEncoder (model=dad_ae), not {type(net)}"
            )
        if ae_epochs < 0 or mapping_epochs < 0:
            raise UserError(f"need ae_epochs, mapping_epochs >= 0, got {ae_epochs}, {mapping_epochs}")
        super().__init__(
            net, forward_model, loss, optimizer, scheduler, task_name, nan_policy, image_size, channels_last
        )
        self.net: PRDADAutoEncoder = net
        self._stage: str | None = None

    # -- the schedule ----------------------------------------------------------------------------------
    def stage_at(self, epoch: int) -> str:
        if epoch < self.hparams.ae_epochs:
            return "autoencoder"
        return "mapping" if epoch < self.hparams.ae_epochs + self.hparams.mapping_epochs else "finetune"

    def set_stage(self, stage: str) -> None:
        """Freeze what ``stage`` does not train: the MLP in stage 1, the auto-encoder in stage 2."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.net.predictor.requires_grad_(stage != "autoencoder")
        self.net.autoencoder.requires_grad_(stage != "mapping")
        self.net.autoencoder.train(self.training and stage != "mapping")
        if stage != self._stage:
            log.info("PR-DAD II stage %s from epoch %d", stage, self.current_epoch)
        self._stage = stage

    def on_train_epoch_start(self) -> None:
        self.set_stage(self.stage_at(self.current_epoch))

    def configure_optimizers(self) -> Any:
        """The task's optimizer / scheduler over every parameter (the stages only freeze, per epoch)."""
        self.net.requires_grad_(True)
        return super().configure_optimizers()

    # -- the losses of each stage ----------------------------------------------------------------------
    def autoencoder_losses(self, x: Tensor) -> dict[str, Tensor]:
        x_hat, code = self.net.autoencoder(x)
        return {
            "ae_reconstruction": rot180_invariant_error(x_hat, x).mean(),
            "ae_sparsity": self.hparams.sparsity_weight * code.abs().mean(),
        }

    def mapping_losses(self, y: Tensor, x: Tensor) -> dict[str, Tensor]:
        ae = self.net.autoencoder
        with torch.no_grad():
            codes = ae.encode(x), ae.encode(rot180(x))
        code = self.net.predict_code(y)
        errors = [per_sample_error(code.float(), target.float()) for target in codes]
        parts = {"code": self.hparams.code_weight * torch.minimum(*errors).mean()}
        if self.hparams.mapping_image_weight > 0:
            x_hat = ae.decode(code, self.net.image_size)
            parts["image"] = self.hparams.mapping_image_weight * self.loss(x_hat, x)
        return parts

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        y, x = self.inputs_and_target(batch)
        stage = self._stage or self.stage_at(self.current_epoch)
        if stage == "autoencoder":
            parts = self.autoencoder_losses(x)
        elif stage == "mapping":
            parts = self.mapping_losses(y, x)
        else:
            parts = {"image": self.loss(self.net(y), x)}
        loss = torch.stack(list(parts.values())).sum()
        if not torch.isfinite(loss):
            return self._non_finite_loss(loss)
        batch_size = len(x)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log(
            "train/stage", float(STAGES.index(stage)), on_step=False, on_epoch=True, batch_size=batch_size
        )
        for name, part in parts.items():
            self.log(f"train/{name}", part, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss
