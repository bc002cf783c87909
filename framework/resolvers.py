"""OmegaConf resolvers the configs use: ``${project_root:}``, ``${wandb_offline:}``, ``${run_id:<dir>}``,
``${sweep_group:<name>}``, ``${sweep_job_name:<name>}``, ``${fast_precision:<accelerator>}``,
``${shared_dir:data|weights}``."""

from __future__ import annotations

import netrc
import os
import secrets
from pathlib import Path

import torch
from omegaconf import OmegaConf

from framework.paths import PROJECT_ROOT, shared_data_dir, shared_weights_dir


def wandb_offline() -> bool:
    """True unless a W&B API key is configured (``WANDB_API_KEY`` or a ``~/.netrc`` entry) or
    ``WANDB_MODE=online`` is set; ``WANDB_MODE=offline`` always wins. Offline runs are synced later with
    ``wandb sync <run dir>/wandb/offline-run-*``."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        return True
    if mode == "online" or os.environ.get("WANDB_API_KEY"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (FileNotFoundError, netrc.NetrcParseError):
        return True


def run_id(output_dir: str | None) -> str | None:
    """A W&B run id kept in ``<output_dir>/.run_id``: a run resumed in its directory logs to the same run.
    None where there is no run directory (`--cfg job --resolve` prints the config before Hydra makes one)."""
    if output_dir is None:
        return None
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    path = Path(output_dir) / ".run_id"
    if path.is_file():
        return path.read_text().strip()
    new_id = secrets.token_hex(4)
    if rank_zero_only.rank == 0:  # DDP ranks started by SLURM / torchrun resolve this too; rank 0 logs to W&B
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_id)
    return new_id


def sweep_dir() -> Path | None:
    """The multirun directory of the running job (None outside a multirun)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hydra_cfg = HydraConfig.get()
    output_dir = str(hydra_cfg.runtime.output_dir)
    subdir = str(hydra_cfg.sweep.subdir)  # the job's dir is <sweep dir>/<subdir> (hydra.core.utils.run_job)
    if output_dir.endswith(subdir):
        return Path(output_dir[: -len(subdir)].rstrip("/"))
    return Path(output_dir).parent


def sweep_group(name: str) -> str:
    """``name`` for a single run; ``name/<multirun dir name>`` (its date and time by default) for every job of
    a multirun, so the W&B runs of one sweep share a group the dashboard compares."""
    directory = sweep_dir()
    return name if directory is None else f"{name}/{directory.name}"


def sweep_job_name(name: str) -> str:
    """``name`` for a single run; ``name-<job number>`` for a job of a multirun (its jobs share one time)."""
    from hydra.core.hydra_config import HydraConfig

    return name if sweep_dir() is None else f"{name}-{HydraConfig.get().job.num}"


def cpu_computes_bf16() -> bool:
    """Whether this CPU runs bfloat16 matmuls and convolutions in hardware (oneDNN's test: AVX-512 with the
    BF16 extension, or AMX). Without it torch emulates bf16 and a conv is 10× to 50× slower than in fp32
    (measured on an AVX2 EPYC: the auto-correction thumbnail CNN 0.43 s → 5.1 s per batch)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fast_precision(accelerator: str = "cpu") -> str:
    """``bf16-mixed`` where ``accelerator`` computes bfloat16 natively, else ``32-true``: the task defaults'
    precision (``benchmarks/results/precision.md``: bf16 is the faster at equal quality where it is native).

    ``cpu``: :func:`cpu_computes_bf16`; ``gpu`` / ``cuda``: the GPU's own support (``bf16-mixed`` when the
    config is composed where there is no GPU); ``mps``: ``32-true``; ``auto``: the GPU's answer when CUDA is
    available, else the CPU's."""
    accelerator = str(accelerator).lower()
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        native = not torch.cuda.is_available() or torch.cuda.is_bf16_supported()
    else:
        native = accelerator == "cpu" and cpu_computes_bf16()
    return "bf16-mixed" if native else "32-true"


def register_resolvers() -> None:
    """Register once per process (Hydra may import the app twice in multirun)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("shared_dir"):  # ${shared_dir:data} / ${shared_dir:weights}
        folders = {"data": shared_data_dir, "weights": shared_weights_dir}
        OmegaConf.register_new_resolver("shared_dir", lambda kind: str(folders[kind]()))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("sweep_group"):
        OmegaConf.register_new_resolver("sweep_group", sweep_group)
    if not OmegaConf.has_resolver("sweep_job_name"):
        OmegaConf.register_new_resolver("sweep_job_name", sweep_job_name)
    if not OmegaConf.has_resolver("fast_precision"):
        OmegaConf.register_new_resolver("fast_precision", fast_precision, use_cache=True)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", run_id, use_cache=True)
