"""Checkpoints written atomically (temp file + rename) and read with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from framework.errors import UserError


class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill during ``save_checkpoint`` leaves the previous file intact, never half a checkpoint."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> Any:
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except FileNotFoundError:
            raise UserError(f"checkpoint '{path}' does not exist: give the path of a .ckpt file") from None
        except (RuntimeError, EOFError, OSError, ValueError) as error:
            if (
                "PytorchStreamReader" in str(error)
                or isinstance(error, EOFError)
                or "zip" in str(error).lower()
            ):
                raise UserError(
                    f"checkpoint '{path}' is corrupt or truncated: use another one (e.g. last.ckpt)"
                ) from None
            raise
