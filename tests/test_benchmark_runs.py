"""The benchmarks' bookkeeping: a finished run is reused, an interrupted one is not (it resumes), a partial
run merges its rows into the previous results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import merge_rows, reusable


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


def test_a_partial_run_replaces_its_rows_and_keeps_the_others():
    previous = [
        {"method": "hio", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.12}},
        {"method": "dad", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.02}},
        {"method": "PR-DAD (paper)", "dataset": "mnist", "source": "paper", "metrics": {"mse": 0.03}},
    ]
    fresh = [
        {"method": "dad", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.01}},
        {"method": "dad_ae", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.015}},
        {"method": "hio", "dataset": "faces", "protocol": "prdad", "metrics": {"mse": 0.02}},
    ]
    merged = merge_rows(previous, fresh)
    assert [(row["method"], row["metrics"]["mse"]) for row in merged] == [
        ("hio", 0.12),
        ("hio", 0.02),  # new: after its method's rows
        ("dad", 0.01),  # replaced in place
        ("dad_ae", 0.015),  # a new method: last, before the published rows
        ("PR-DAD (paper)", 0.03),
    ]
    assert merge_rows([], fresh) == fresh
