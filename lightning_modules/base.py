"""The training loop every task shares; a task module only says how a batch becomes (input, target)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics import Metric

from framework.errors import UserError
from framework.rng import rng_state, set_rng_state
from metrics.split_metrics import SplitMetrics

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class ImagingModule(LightningModule):
    """``net`` maps inputs to predictions, ``loss(pred, target)`` trains it, ``metric_fn(pred, target)``
    gives per-sample metrics (a dict of (B,) tensors) averaged per split, and :meth:`dataset_metrics` gives
    torchmetrics objects computed over a whole split (both synced under DDP; ``metric_names`` lists the
    per-sample ones, its first is shown in the progress bar).

    Subclasses override :meth:`example_batch` (a random batch, for tests and export),
    :meth:`inputs_and_target` (e.g. simulate a measurement from a clean image), :meth:`visuals` (what the
    image callback shows) and :meth:`prediction_images` (what predict writes).

    ``optimizer`` / ``scheduler`` are ``_partial_`` factories from the config. A scheduler whose signature
    asks for ``total_steps`` (OneCycleLR) or ``T_max`` (CosineAnnealingLR) gets the run's number of steps
    and is stepped every batch.
    """

    metric_names: tuple[str, ...] = ()
    channels_last = False  # see set_channels_last

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module | None = None,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        task_name: str = "",
        nan_policy: str = "stop",
    ) -> None:
        super().__init__()
        if nan_policy not in ("stop", "skip"):
            raise UserError(f"module.nan_policy={nan_policy} is not allowed: choose stop or skip")
        # modules live in the state dict and factories in the config; checkpoints keep plain values only,
        # so they load with torch.load(weights_only=True)
        self.save_hyperparameters(
            logger=False, ignore=["net", "loss", "forward_model", "optimizer", "scheduler"]
        )
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.net = net
        self.loss = loss
        self.val_metrics = self.split_metrics()
        self.test_metrics = nn.ModuleDict({"all": self.split_metrics()})

    def split_metrics(self) -> SplitMetrics:
        return SplitMetrics(self.metric_names, self.dataset_metrics())

    def setup(self, stage: str) -> None:
        """One metric set per named test set (``datamodule.test_set_names``, e.g. Set5 and Set14)."""
        names = getattr(self.trainer.datamodule, "test_set_names", None) if self._trainer else None
        for name in names or []:
            if name not in self.test_metrics:
                self.test_metrics[name] = self.split_metrics().to(self.device)

    # -- what a task overrides -------------------------------------------------------------------------
    def example_batch(self, batch_size: int = 2) -> dict[str, Any]:
        """A random batch shaped as this task's DataModule makes them: what the shared tests, the ONNX
        export and the speed benchmarks feed the module when no data is at hand."""
        raise NotImplementedError(f"{type(self).__name__} must define example_batch(batch_size)")

    def ideal_prediction(self, target: torch.Tensor) -> torch.Tensor:
        """A prediction the loss scores as perfect for ``target`` (the target itself when the net predicts in
        the target's space; e.g. large logits of the right sign for a mask). The shared tests check that the
        loss prefers it to a random prediction."""
        return target

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """The net's input for :meth:`example_batch` (what ``self.net`` sees)."""
        return self.inputs_and_target(self.example_batch(batch_size))[0]

    def inputs_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return batch["input"], batch.get("target")

    def metric_fn(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample metrics, name → (B,) tensor, for the names in ``metric_names``."""
        return {}

    def dataset_metrics(self) -> dict[str, Metric]:
        """Fresh data-set-level metrics (name → torchmetrics object, e.g. ``BinaryJaccardIndex``), one set per
        split, updated with ``(pred, target)`` of every batch (in fp32) and computed over the whole split."""
        return {}

    def visuals(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict[str, Any]:
        """Rows of the image grid: name → (B, C, H, W) in [0, 1]."""
        rows = {"input": inputs, "prediction": pred}
        if target is not None:
            rows["target"] = target
        return rows

    def prediction_images(
        self, inputs: torch.Tensor, pred: torch.Tensor, target: torch.Tensor | None
    ) -> dict:
        """What ``stage=predict`` writes for each image: suffix → (B, C, H, W); "" is the main output."""
        return {"": pred}

    # -- the loop --------------------------------------------------------------------------------------
    def set_channels_last(self, enabled: bool) -> None:
        """Run the net's weights and inputs in channels-last memory format (:meth:`run_net`), oneDNN's
        preferred layout on CPU: training steps on one core of ESPCN 23.9 -> 20.9 ms and of PSPNet-MobileNetV2
        978 -> 844 ms (bf16; fp32 alike)."""
        self.channels_last = enabled
        if enabled:
            self.net.to(memory_format=torch.channels_last)

    def run_net(self, inputs: torch.Tensor, *args: Any) -> Any:
        """``self.net(inputs, *args)``, ``inputs`` channels-last when :meth:`set_channels_last` asked."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return self.net(inputs, *args)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.run_net(inputs)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        inputs, target = self.inputs_and_target(batch)
        loss = self.loss(self(inputs), target)
        if not torch.isfinite(loss):
            return self._non_finite_loss(loss)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(inputs))
        return loss

    def _non_finite_loss(self, loss: torch.Tensor) -> None:
        if self.hparams.nan_policy == "skip":
            log.warning(
                "loss is %s at step %d: step skipped (module.nan_policy=skip)", loss.item(), self.global_step
            )
            return None
        last = getattr(self.trainer.checkpoint_callback, "last_model_path", "") or "none yet"
        raise UserError(
            f"loss is {loss.item()} at step {self.global_step}: stopped; last good checkpoint {last}; "
            "lower the learning rate or set module.nan_policy=skip"
        )

    def _evaluate(self, batch: dict[str, Any], split: str, metrics: SplitMetrics) -> None:
        inputs, target = self.inputs_and_target(batch)
        pred = self(inputs)
        if self.loss is not None and target is not None:
            metrics.loss.update(self.loss(pred, target).detach().float(), weight=len(inputs))
            self.log(f"{split}/loss", metrics.loss, batch_size=len(inputs), add_dataloader_idx=False)
        if target is not None:
            with torch.autocast(device_type=pred.device.type, enabled=False):  # metrics in fp32, never bf16
                pred, target = pred.float(), target.float()
                metrics.update(self.metric_fn(pred, target), pred, target)
            for name, metric in metrics.items():
                self.log(
                    f"{split}/{name}",
                    metric,
                    batch_size=len(inputs),
                    prog_bar=bool(self.metric_names) and name == self.metric_names[0],
                    add_dataloader_idx=False,
                )

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        names = getattr(self.trainer.datamodule, "test_set_names", None)
        name = names[dataloader_idx] if names else ""
        self._evaluate(batch, f"test/{name}" if name else "test", self.test_metrics[name or "all"])

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        inputs, target = self.inputs_and_target(batch)
        pred = self(inputs)
        return {"name": batch["name"], "images": self.prediction_images(inputs, pred, target)}

    @torch.no_grad()
    def visual_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        inputs, target = self.inputs_and_target(batch)
        return self.visuals(inputs, self(inputs), target)

    # -- optimisation ----------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise UserError("module.optimizer is not set: a trainable model needs one (see conf/task/)")
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_factory is None:
            return optimizer
        factory = self.scheduler_factory
        given = getattr(factory, "keywords", {})
        wanted = inspect.signature(getattr(factory, "func", factory)).parameters
        kwargs = {}
        for name in ("total_steps", "T_max"):
            if name in wanted and name not in given:
                kwargs[name] = int(self.trainer.estimated_stepping_batches)
        scheduler = factory(optimizer=optimizer, **kwargs)
        interval = "step" if kwargs else "epoch"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    # -- checkpoints remember what made them, and the random state to resume exactly -------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["imaging_lab"] = {"task": self.hparams.task_name, "net": type(self.net).__name__}
        checkpoint["rng_states"] = rng_state()

    def on_train_start(self) -> None:
        """A resumed fit continues the random streams of the run it resumes (noise, dropout, augmentation)."""
        state, self._resume_rng = getattr(self, "_resume_rng", None), None
        if state is not None:
            set_rng_state(state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resume_rng = checkpoint.get("rng_states")  # restored in on_train_start, after loading is done
        saved = checkpoint.get("imaging_lab")
        here = {"task": self.hparams.task_name, "net": type(self.net).__name__}
        if saved is not None and saved != here:
            raise UserError(
                f"checkpoint was saved by task={saved['task']} with net {saved['net']}, but this run is "
                f"task={here['task']} with net {here['net']}: use the matching task/model or checkpoint"
            )
