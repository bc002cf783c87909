"""framework/loggers.py: a resumed run's CSV logger appends to the metrics.csv its first part wrote."""

from __future__ import annotations

import csv
from pathlib import Path

from framework.loggers import CSVLogger


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_second_logger_on_the_same_folder_appends_under_the_widened_header(tmp_path: Path) -> None:
    first = CSVLogger(save_dir=str(tmp_path), name="csv", version="")
    first.log_metrics({"train/loss": 0.5}, step=0)
    first.log_metrics({"train/loss": 0.4}, step=1)
    first.save()
    resumed = CSVLogger(save_dir=str(tmp_path), name="csv", version="")  # as a run resumed in its run dir
    resumed.log_metrics({"train/loss": 0.3, "val/psnr": 20.0}, step=2)
    resumed.save()
    rows = _rows(tmp_path / "csv" / "metrics.csv")
    assert [row["step"] for row in rows] == ["0", "1", "2"]  # nothing written before is lost
    assert [row["train/loss"] for row in rows] == ["0.5", "0.4", "0.3"]
    assert [row["val/psnr"] for row in rows] == ["", "", "20.0"]
