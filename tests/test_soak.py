"""Soak: three fits back to back and a prediction over 500 images in one process, with DataLoader workers,
must not grow memory beyond a small bound nor leak file handles or worker processes.

Slow (a few minutes on 2 CPU cores): out of `make test`; run with `pytest -m slow tests/test_soak.py`.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framework.runner import run

RSS_GROWTH_MB = 200  # after the first fit has warmed every cache up
FD_SLACK = 8


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def child_processes() -> list[int]:
    me, children = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:  # field 4: the parent's pid
                children.append(int(entry.name))
    return children


def settle() -> None:
    gc.collect()
    gc.collect()


@pytest.mark.slow
def test_three_fits_and_500_predictions_in_one_process(make_cfg, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(500):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8), "L").save(images / f"{i:03d}.png")

    fit_args = ("trainer.max_epochs=1", "data.num_workers=2", "data.train_size=256", "data.batch_size=32")
    samples = []
    best = ""
    for index in range(3):
        out = tmp_path / f"fit{index}"
        run(make_cfg(*fit_args, output_dir=out))
        best = json.loads((out / "metrics.json").read_text())["checkpoints"]["best"]
        settle()
        samples.append((rss_mb(), open_fds(), child_processes()))
    predictions = tmp_path / "predictions"
    run(
        make_cfg(
            "stage=predict",
            f"ckpt_path={best}",
            f"input={images}",
            f"output={predictions}",
            "data.num_workers=2",
            output_dir=tmp_path / "predict",
        )
    )
    settle()
    samples.append((rss_mb(), open_fds(), child_processes()))

    assert len(list(predictions.glob("*_vs_truth.png"))) == 500
    (rss_first, fds_first, _), (rss_last, fds_last, children) = samples[0], samples[-1]
    print("RSS MB after each run:", [round(s[0]) for s in samples], "open fds:", [s[1] for s in samples])
    assert rss_last - rss_first < RSS_GROWTH_MB, samples
    assert fds_last - fds_first <= FD_SLACK, samples
    assert all(not s[2] for s in samples), f"worker processes left behind: {samples}"
    assert not children
