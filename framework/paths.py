"""The repository root and the shared folders for code built outside Hydra (a net or loss constructed in
Python, the tests), resolved as ``conf/paths/default.yaml`` resolves them for ``run.py``."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``$IMAGING_LAB_SHARED_DATA``, else ``<repo>/../shared/data``."""
    return Path(os.environ.get("IMAGING_LAB_SHARED_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def shared_weights_dir() -> Path:
    """``$IMAGING_LAB_SHARED_WEIGHTS``, else ``<repo>/../shared/weights``."""
    return Path(os.environ.get("IMAGING_LAB_SHARED_WEIGHTS") or PROJECT_ROOT.parent / "shared" / "weights")
