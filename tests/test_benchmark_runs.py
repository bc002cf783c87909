"""The benchmarks' run bookkeeping: a finished run is reused, an interrupted one is not (it resumes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import reusable


@pytest.mark.parametrize(
    "metrics, reuse, expected",
    [
        (None, True, False),  # never ran
        ({"interrupted": False}, True, True),
        ({"interrupted": True}, True, False),  # killed part-way: resume it, never report it
        ({"interrupted": False}, False, False),  # without --reuse everything reruns
    ],
)
def test_only_finished_runs_are_reused(tmp_path, metrics, reuse, expected):
    if metrics is not None:
        (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert reusable(tmp_path, reuse) is expected
