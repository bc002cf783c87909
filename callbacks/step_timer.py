"""How fast the training loop runs, as the user sees it: ``perf/train_step_ms`` (mean wall time from one
training batch's end to the next one's, so data loading, forward, backward, optimiser, logging and progress
bar are all in it; validation is not) and ``perf/startup_s`` (from launch to the first training batch).

Launch is ``$IMAGING_LAB_LAUNCHED_AT`` (Unix time, set by ``run.py`` on its first line unless the caller set
it earlier, e.g. a benchmark that also counts the interpreter's start). Both are logged once per epoch,
cost nothing per step beyond two clock reads, and land in ``metrics.json`` and every logger.

It also keeps the fit's clock in every checkpoint (``fit_seconds``: all earlier parts of a resumed fit plus
this one), so a fit resumed after a hard kill, which wrote no ``metrics.json``, still reports its whole time.
"""

from __future__ import annotations

import os
import time
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

LAUNCH_VARIABLE = "IMAGING_LAB_LAUNCHED_AT"


class StepTimer(Callback):
    """Times training steps after ``skip`` warm-up steps of each epoch (the first batch of an epoch also
    waits for the loader to start, the first steps for lazy allocations)."""

    def __init__(self, skip: int = 2) -> None:
        super().__init__()
        self.skip = skip
        self.startup_s: float | None = None
        self._launched: float | None = None
        self._earlier_fit_s = 0.0  # the fit time of the parts before the checkpoint this fit resumed from
        self._fit_started: float | None = None
        self._reset()

    def fit_seconds(self) -> float | None:
        """Seconds of fitting so far, earlier parts included (None before this process's fit started)."""
        if self._fit_started is None:
            return None
        return self._earlier_fit_s + time.perf_counter() - self._fit_started

    def state_dict(self) -> dict[str, Any]:
        return {"fit_seconds": self.fit_seconds() or self._earlier_fit_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._earlier_fit_s = float(state_dict.get("fit_seconds", 0.0))

    def _reset(self) -> None:
        self._last_end: float | None = None
        self._seconds, self._steps, self._seen = 0.0, 0, 0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._reset()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_started = time.perf_counter()
        launched = os.environ.pop(LAUNCH_VARIABLE, None)  # the process's first fit (not a multirun's next)
        self._launched = float(launched) if launched else None

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        if self.startup_s is None and self._launched is not None:
            self.startup_s = time.time() - self._launched

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        now = time.perf_counter()
        self._seen += 1
        if self._last_end is not None and self._seen > self.skip + 1:
            self._seconds += now - self._last_end
            self._steps += 1
        self._last_end = now

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last_end = None  # a validation inside the epoch (val_check_interval) is not a step's time

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._steps:
            pl_module.log("perf/train_step_ms", 1000.0 * self._seconds / self._steps, rank_zero_only=True)
        if self.startup_s is not None:
            pl_module.log("perf/startup_s", self.startup_s, rank_zero_only=True)
