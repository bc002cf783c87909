"""Random-number state for exact resumption: the global generators saved in a checkpoint and restored, and
a per-item seed so data loading never draws from (or depends on) the global stream.

States are kept as tensors, ints and tuples only, so a checkpoint that holds them still loads with
``torch.load(weights_only=True)`` (PyTorch's default).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """The state of torch (CPU and every CUDA device), numpy and Python's ``random``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "torch.cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached),
        "python": (version, list(python_state), gauss_next),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only where the same devices exist)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("torch.cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    if "python" in state:
        version, python_state, gauss_next = state["python"]
        random.setstate((version, tuple(python_state), gauss_next))


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded by ``seed``, then put the previous state back.

    A data set that draws random crops or flips with ``torch.rand*`` inside it gives the same item for the
    same seed, in the main process or a worker, whatever was drawn before.
    """
    generator = torch.random.default_generator
    saved = generator.get_state()
    generator.manual_seed(seed)
    try:
        yield
    finally:
        generator.set_state(saved)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniforms_from_seeds(seeds: Sequence[int], count: int) -> np.ndarray:
    """``count`` uniform numbers in [0, 1) per seed, (len(seeds), count): SplitMix64 (Steele, Lea & Flood,
    OOPSLA 2014) of ``seed + k·γ``, the top 53 bits. Each row depends on its seed only, so a whole batch of
    seeded items draws in a few vectorised operations instead of one generator reseed per item."""
    with np.errstate(over="ignore"):
        steps = np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN
        state = np.asarray(seeds, dtype=np.uint64)[:, None] + steps
        state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        state ^= state >> np.uint64(31)
    return (state >> np.uint64(11)).astype(np.float64) / 2.0**53
