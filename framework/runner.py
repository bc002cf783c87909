"""One experiment from a composed config: build everything with ``_target_``, run the stage, report.

Nothing here knows about any task: the task preset in ``conf/task/`` names the LightningModule and its
parts, the ``data`` group names the DataModule.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra.errors import InstantiationException
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf

from callbacks.preemption import PreemptionCheckpoint
from callbacks.step_timer import StepTimer
from framework.checkpoint_io import check_checkpoint_file, load_net_weights
from framework.errors import UserError
from framework.export import use_onnx_runtime
from framework.results import atomic_write_text, print_metrics, read_results, write_results

log = logging.getLogger(__name__)

STAGES = ("fit", "test", "predict")
RUNTIMES = ("torch", "onnx")  # what runs the net of stage=test / predict


def is_rank_zero() -> bool:
    """Whether this process writes the run's files (config, results): rank 0 of a DDP job. Every rank runs
    this runner when SLURM or torchrun start the ranks; under DDP spawn it runs once, in the main process.
    (Checkpoints, loggers and image grids are rank 0's already: Lightning's and the callbacks' own.)"""
    return rank_zero_only.rank == 0


def instantiate_list(node: DictConfig | None, kind: str, **kwargs: Any) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-like group (``callbacks`` / ``logger``)."""
    objects = []
    for name, entry in (node or {}).items():
        if entry is None:  # e.g. `callbacks.early_stopping=null`
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise UserError(f"{kind}.{name} has no _target_: give it one or set {kind}.{name}=null")
        objects.append(instantiate(entry, **kwargs))
    return objects


def has_trainable_parameters(module: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def checkpoint_paths(callbacks: list[Callback]) -> dict[str, str]:
    for callback in callbacks:
        if isinstance(callback, ModelCheckpoint):
            last = Path(callback.dirpath or "") / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
            return {
                "best": callback.best_model_path,
                "last": callback.last_model_path or (str(last) if last.is_file() else ""),
            }
    return {}


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Epoch-level scalars (``train/loss``, not its ``_step`` / ``_epoch`` copies)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float, torch.Tensor)) and not k.endswith(("_step", "_epoch"))
    }


def spawned(trainer: pl.Trainer) -> bool:
    """Whether the stages ran in spawned processes (``trainer=ddp_cpu``): this process's trainer and
    DataModule then hold only what Lightning sends back (weights, best checkpoint, callback metrics)."""
    return isinstance(getattr(trainer.strategy, "launcher", None), _MultiProcessingLauncher)


def completed_epochs(trainer: pl.Trainer, last_checkpoint: str | None, interrupted: bool) -> int:
    """The fit's epoch count, ``trainer.current_epoch``; after spawned processes, from the last checkpoint
    (its ``epoch`` is the epoch it was saved in: one more once that epoch completed, i.e. the fit ended)."""
    if not spawned(trainer) or not last_checkpoint or not Path(last_checkpoint).is_file():
        return trainer.current_epoch
    saved = torch.load(last_checkpoint, map_location="cpu", weights_only=True, mmap=True)
    return int(saved["epoch"]) + (0 if interrupted else 1)


def test_set_size(datamodule: pl.LightningDataModule) -> int | None:
    sets = getattr(datamodule, "test_set", None)
    if sets is None:
        return None
    return sum(len(s) for s in sets) if isinstance(sets, list) else len(sets)


def command_line_key(full_key: str) -> str:
    """The key a user types for a config key: ``module.net.levels`` is set as ``model.levels``."""
    for placed, group in (("module.net", "model"), ("module.loss", "loss")):
        if full_key == placed or full_key.startswith(f"{placed}."):
            return group + full_key[len(placed) :]
    return full_key


def instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, with a user's mistake inside a constructor (or a missing mandatory
    value ``???``) surfacing as the one-line :class:`UserError` instead of Hydra's wrapper."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except MissingMandatoryValue as error:
        key = command_line_key(str(error.full_key))
        raise UserError(f"{key} must be set: add {key}=<value> to the command line") from None
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        if isinstance(error.__cause__, ValueError):  # a constructor refused a value: say where it was set
            where = str(error).rsplit("full_key: ", 1)[1].strip() if "full_key: " in str(error) else "config"
            raise UserError(f"{command_line_key(where)}: {error.__cause__}") from None
        raise


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer, list[Callback]]:
    """DataModule, LightningModule, callbacks, loggers and Trainer, in that order, from the config."""
    if cfg.trainer.get("sync_batchnorm") and cfg.trainer.get("accelerator") == "cpu":
        raise UserError("trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm): set it false on CPU")
    log.info("data: %s", cfg.data._target_)
    datamodule = instantiate(cfg.data, predict_input=cfg.input if cfg.stage == "predict" else None)
    log.info("module: %s (net %s)", cfg.module._target_, cfg.module.net._target_)
    module = instantiate(cfg.module)
    if cfg.get("compile"):  # in place (nn.Module.compile): the state dict and checkpoints keep their keys
        module.net.compile()
    callbacks = instantiate_list(cfg.get("callbacks"), "callbacks")
    loggers: list[Logger] = instantiate_list(cfg.get("logger"), "logger")
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    return datamodule, module, trainer, callbacks


def earlier_fit_seconds(output_dir: Path) -> float:
    """The fit time an interrupted run in ``output_dir`` already spent (a resumed fit reports the total)."""
    previous = read_results(output_dir)
    return float(previous.get("fit_seconds") or 0.0) if previous.get("interrupted") else 0.0


def interrupted_checkpoint(output_dir: Path) -> Path | None:
    """``<output_dir>/checkpoints/last.ckpt`` when ``output_dir`` holds a fit that was interrupted (its
    ``metrics.json`` says so): a requeued SLURM job, or a multirun relaunched into its sweep dir, runs in the
    same directory again and resumes from it."""
    last = output_dir / "checkpoints" / "last.ckpt"
    return last if read_results(output_dir).get("interrupted") and last.is_file() else None


def checkpoint_to_load(module: pl.LightningModule, ckpt_path: str | None, runtime: str) -> str | None:
    """What Lightning loads into ``module`` before it tests or predicts: ``ckpt_path`` for runtime=torch;
    for runtime=onnx the checkpoint is loaded here and the net replaced by its ONNX Runtime twin
    (:func:`~framework.export.use_onnx_runtime`), so nothing."""
    if runtime == "torch":
        return ckpt_path
    if not ckpt_path:
        raise UserError(f"runtime={runtime} runs a trained net: give ckpt_path=<checkpoint .ckpt>")
    onnx_file = use_onnx_runtime(module, ckpt_path)
    log.info("runtime=onnx: ONNX Runtime runs %s (exported from %s)", onnx_file, ckpt_path)
    return None


def run(cfg: DictConfig) -> float | None:
    """Run ``cfg.stage`` and return ``cfg.optimized_metric`` (for sweepers), or None if it was not logged."""
    if cfg.stage not in STAGES:
        raise UserError(f"stage={cfg.stage} is not a stage: choose one of {', '.join(STAGES)}")
    runtime = cfg.get("runtime") or "torch"
    if runtime not in RUNTIMES:
        raise UserError(f"runtime={runtime} is not a runtime: choose one of {', '.join(RUNTIMES)}")
    if runtime != "torch" and cfg.stage == "fit":
        raise UserError(f"runtime={runtime} runs a trained net (stage=test or predict): fit with the default")
    ckpt_path = cfg.ckpt_path
    if ckpt_path and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path={ckpt_path} does not exist: give the path of a .ckpt file")
    if ckpt_path:
        check_checkpoint_file(ckpt_path)  # a corrupt one stops here, before the run dir is written to
    output_dir = Path(cfg.paths.output_dir)
    if cfg.stage == "fit" and not ckpt_path and cfg.get("resume_interrupted", True):
        resumed = interrupted_checkpoint(output_dir)
        if resumed is not None:
            log.warning("%s holds an interrupted fit: resuming it from %s", output_dir, resumed)
            ckpt_path = str(resumed)
            check_checkpoint_file(ckpt_path)
    if is_rank_zero():
        atomic_write_text(output_dir / "config_resolved.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, module, trainer, callbacks = build(cfg)
    if cfg.get("init_weights"):  # fine-tuning: the net starts from a trained run's weights
        load_net_weights(
            module.net,
            cfg.init_weights,
            key="init_weights",
            strict=cfg.get("init_weights_strict", True),
            strict_switch="init_weights_strict",
        )
    trainable = has_trainable_parameters(module)
    metrics: dict[str, float] = {}
    if runtime != "torch" and not trainable:
        raise UserError(f"runtime={runtime} runs a trained net: give ckpt_path=<checkpoint .ckpt>")
    load_from = checkpoint_to_load(module, ckpt_path, runtime)

    interrupted = False
    fit_seconds = None
    if cfg.stage == "fit":
        if trainable:
            started = time.perf_counter() - (earlier_fit_seconds(output_dir) if ckpt_path else 0.0)
            try:
                trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
            except (SIGTERMException, KeyboardInterrupt, SystemExit):
                if trainer.state.status != TrainerStatus.INTERRUPTED:
                    raise
                interrupted = True  # the preemption callback saved last.ckpt
            clock = next((c for c in callbacks if isinstance(c, StepTimer)), None)
            fit_seconds = (clock and clock.fit_seconds()) or time.perf_counter() - started
            metrics.update(scalar_metrics(trainer.callback_metrics))
            ckpt_path = checkpoint_paths(callbacks).get("best") or None
        else:
            log.info("%s has no trainable parameters: nothing to fit, testing it", type(module.net).__name__)
        if not interrupted:
            try:
                trainer.test(module, datamodule=datamodule, ckpt_path=ckpt_path)
            except (SIGTERMException, KeyboardInterrupt, SystemExit):
                if trainer.state.status != TrainerStatus.INTERRUPTED:
                    raise
                interrupted = True  # the fit is complete and checkpointed; only its test is missing
    elif cfg.stage == "test":
        if trainable and not ckpt_path:
            raise UserError("stage=test of a trainable model needs ckpt_path=<checkpoint .ckpt>")
        trainer.test(module, datamodule=datamodule, ckpt_path=load_from)
    else:
        if trainable and not ckpt_path:
            raise UserError("stage=predict of a trainable model needs ckpt_path=<checkpoint .ckpt>")
        trainer.predict(module, datamodule=datamodule, ckpt_path=load_from, return_predictions=False)

    metrics.update(scalar_metrics(trainer.callback_metrics))
    extra = {
        "task": cfg.task_name,
        "experiment": cfg.experiment_name,
        "stage": cfg.stage,
        "model": cfg.module.net._target_,
        "data": getattr(datamodule, "dataset_label", None) or cfg.data.get("dataset") or cfg.data._target_,
        "checkpoints": checkpoint_paths(callbacks),
        "tested_checkpoint": ckpt_path,
        "runtime": runtime,
        "output_dir": str(output_dir),
        "interrupted": interrupted,
        "fit_seconds": fit_seconds,
        "n_test": test_set_size(datamodule),
        "epochs": trainer.current_epoch,
    }
    if spawned(trainer) and cfg.stage != "predict":  # the stages ran in spawned processes: recover the rest
        if extra["n_test"] is None and not interrupted:
            datamodule.setup("test")
            extra["n_test"] = test_set_size(datamodule)
        if cfg.stage == "fit":
            extra["epochs"] = completed_epochs(trainer, extra["checkpoints"].get("last"), interrupted)
    if cfg.stage != "predict" and is_rank_zero():
        write_results(output_dir, metrics, extra)
        print_metrics(metrics, f"{cfg.task_name} / {cfg.experiment_name}: {cfg.stage}")
    log.info("results in %s", output_dir)
    if interrupted:
        for callback in callbacks:
            if isinstance(callback, PreemptionCheckpoint):
                callback.hand_over()  # SLURM: requeue the job (it resumes here, see interrupted_checkpoint)
        raise SystemExit(f"interrupted: results so far in {output_dir}; resume with ckpt_path=last")

    value = metrics.get(cfg.get("optimized_metric") or "")
    if value is None or not math.isfinite(value):
        return None
    return value
