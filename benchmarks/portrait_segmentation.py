"""Portrait segmentation benchmark (skeleton: the run list; the table follows)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from common import ROOT, run_experiment

from framework.resolvers import register_resolvers


@dataclass
class Run:
    """One training run: ``python run.py experiment=… overrides`` (quick: ``quick`` added)."""

    name: str
    experiment: str
    overrides: list[str] = field(default_factory=list)
    label: str = ""


QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "data.val_size=8",
    "data.test_size=8",
    "callbacks.image_logger=null",
]
RUNS = [
    Run("pspnet_mnv2_nll_jaccard_w1", "seg_jaccard_sweep", ["loss.jaccard_weight=1"]),
    Run("pspnet_mnv2_nll", "seg_nll"),
    Run("pspnet_mnv2_soft_jaccard", "seg_soft_jaccard"),
    Run("unet_nll_jaccard_w1", "seg_unet"),
    Run("pspnet_mnv2_nll_jaccard_w0.5", "seg_jaccard_sweep", ["loss.jaccard_weight=0.5"]),
    Run("pspnet_mnv2_nll_jaccard_w2", "seg_jaccard_sweep", ["loss.jaccard_weight=2"]),
    Run("pspnet_resnet18_nll_jaccard_w1", "seg_resnet18"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--train-only", action="store_true")
    args = parser.parse_args()
    register_resolvers()
    bench_dir = ROOT / "outputs" / "bench" / "portrait_segmentation" / ("" if args.full else "quick")
    for run in RUNS:
        run_dir: Path = bench_dir / run.name
        overrides = [f"experiment={run.experiment}", *run.overrides, *([] if args.full else QUICK)]
        try:
            run_experiment(overrides, run_dir, args.reuse, log_file=run_dir.with_suffix(".log"))
        except RuntimeError as error:
            print(f"FAILED {run.name}: {error}", flush=True)


if __name__ == "__main__":
    main()
