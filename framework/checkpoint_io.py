"""Checkpoints written atomically (temp file + fsync + rename) and read with one-line errors.

Lightning reads every checkpoint through the Trainer's ``CheckpointIO`` (``trainer.fit/test/predict(
ckpt_path=...)``), so a corrupt or truncated file given as ``ckpt_path`` ends here, as a :class:`UserError`.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import Tensor, nn

from framework.errors import UserError

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """A kill during ``save_checkpoint`` leaves the previous file intact, never half a checkpoint."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the rename makes it the checkpoint
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> Any:
        path = Path(path)
        check_checkpoint_file(path)
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except UserError:
            raise
        except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError) as error:
            raise UserError(describe_unreadable(path, error)) from None


def check_checkpoint_file(path: str | Path) -> None:
    """Raise a one-line :class:`UserError` unless ``path`` is a whole checkpoint file: it exists, is a
    PyTorch zip archive, and every record matches its CRC (so a truncated copy or flipped bits are caught
    before anything is loaded or written). Reads the file once, without unpickling it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint '{path}' does not exist: give the path of a .ckpt file")
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"checkpoint '{path}' is corrupt or truncated ({path.stat().st_size} bytes, not a PyTorch "
            "checkpoint): use another one (e.g. last.ckpt or a best-*.ckpt of the same run)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise UserError(f"checkpoint '{path}' is corrupt ({error}): use another one") from None
    if bad is not None:
        raise UserError(
            f"checkpoint '{path}' is corrupt (record {bad} fails its checksum): use another one "
            "(e.g. last.ckpt or a best-*.ckpt of the same run)"
        )


def describe_unreadable(path: Path, error: BaseException) -> str:
    """One line on why ``torch.load`` could not read ``path`` and what to do."""
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        return (
            f"checkpoint '{path}' is corrupt or truncated ({size} bytes, not a PyTorch checkpoint): use "
            "another one (e.g. last.ckpt or a best-*.ckpt of the same run)"
        )
    if "weights only" in str(error).lower() or isinstance(error, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        what = f" ({found[1]})" if found else ""
        return (
            f"checkpoint '{path}' holds Python objects{what} that safe loading (weights_only=True) "
            "refuses: use a checkpoint written by this framework"
        )
    return f"checkpoint '{path}' is corrupt ({type(error).__name__}: {first_line}): use another one"


def load_net_weights(
    net: nn.Module,
    checkpoint: str | Path,
    key: str = "checkpoint",
    prefix: str = "net.",
    strict: bool = True,
    strict_switch: str | None = None,
) -> None:
    """Load ``net``'s weights from a Lightning checkpoint (its ``state_dict`` keys under ``prefix``) or from a
    plain ``state_dict`` file. ``strict``: the architecture must match the one that was trained; otherwise
    every tensor whose name and shape match is loaded and the rest keep their initialisation, said in one
    warning (a net of one upscaling factor starts from another's this way: Lim et al., CVPRW 2017, §4.2;
    BasicSR's ``strict_load_g: false``). ``key`` names the config value in errors, ``strict_switch`` the one
    that turns ``strict`` off."""
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise UserError(f"{key}={checkpoint} does not exist: give the .ckpt of a trained run")
    check_checkpoint_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)} or state
    if not strict:
        weights, skipped = matching_weights(net, weights)
        if not weights:
            raise UserError(f"{key}={checkpoint} has no tensor that fits {type(net).__name__}")
        if skipped:
            log.warning(
                "%s: %d of %d tensors do not fit and keep their initialisation: %s",
                key,
                len(skipped),
                len(net.state_dict()),
                ", ".join(skipped),
            )
    try:
        net.load_state_dict(weights, strict=strict)
    except RuntimeError as error:
        partial = f", or {strict_switch}=false to load the tensors that fit" if strict_switch else ""
        raise UserError(
            f"{key}={checkpoint} does not fit {type(net).__name__}: give the net the arguments it was "
            f"trained with (see that run's config_resolved.yaml){partial}. {str(error).splitlines()[0]}"
        ) from None


def matching_weights(net: nn.Module, weights: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """The tensors of ``weights`` whose name and shape are ``net``'s, and the names of ``net``'s others."""
    own = net.state_dict()
    fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    return fitting, [k for k in own if k not in fitting]
