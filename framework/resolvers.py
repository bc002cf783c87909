"""OmegaConf resolvers the configs use: ``${project_root:}`` and ``${wandb_offline:}``."""

from __future__ import annotations

import netrc
import os
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


def register_resolvers() -> None:
    """Register once per process (Hydra may import the app twice in multirun)."""
    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("wandb_offline"):
        OmegaConf.register_new_resolver("wandb_offline", wandb_offline)
