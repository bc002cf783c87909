"""OmegaConf resolvers the configs use: ``${project_root:}``, ``${wandb_offline:}``, ``${run_id:<dir>}``."""

from __future__ import annotations

import netrc
import os
import secrets
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


def run_id(output_dir: str) -> str:
    """A W&B run id kept in ``<output_dir>/.run_id``: a run resumed in its directory logs to the same run."""
    path = Path(output_dir) / ".run_id"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    new_id = secrets.token_hex(4)
    path.write_text(new_id)
    return new_id


def register_resolvers() -> None:
    """Register once per process (Hydra may import the app twice in multirun)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", run_id, use_cache=True)

