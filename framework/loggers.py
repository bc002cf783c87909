"""Lightning's CSVLogger, appending under the header already on disk.

Lightning 2.6's CSV writer deletes an existing ``metrics.csv`` when it is created, and keeps the file's column
names in memory only. A writer that did not write the file itself (the logger of the main process under DDP
spawn, whose fit ran in a spawned process; a resumed run) would so drop the rows before it, or, where the file
survives, rewrite it under the new rows' columns alone and fail on the old rows ("dict contains fields not in
fieldnames"). This writer keeps the file and starts from its header.
"""

from __future__ import annotations

import csv

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class AppendingExperimentWriter(ExperimentWriter):
    """:class:`ExperimentWriter` that appends to an existing ``metrics.csv``, under its header."""

    def _check_log_dir_exists(self) -> None:
        """Keep an existing ``metrics.csv`` (Lightning's writer deletes it here): a resumed run appends."""

    def _record_new_keys(self) -> set[str]:
        if not self.metrics_keys and self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = sorted(next(csv.reader(handle), []))
        return super()._record_new_keys()


class CSVLogger(LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` with :class:`AppendingExperimentWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
