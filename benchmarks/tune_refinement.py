"""Choose the refinement's iterations on VALIDATION images (never the test set).

    python benchmarks/tune_refinement.py <prdad_haar run dir> [--count 1000] [--weights-only]

Prints SSIM (data range 2) and MSE of PR-DAD I alone and refined by HIO / ER / RAAR (iterations, beta, the
upper bound x <= 1), then the best refinement averaged with the network output (``model.output_weight``), on
the first ``count`` validation images of the run's data (the split held out of training).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hydra
from harness import load_net

from algorithms.phase_retrieval import ClassicalPhaseRetrieval
from framework.resolvers import register_resolvers
from metrics.phase_retrieval import rot180_invariant_metrics


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--weights-only",
        action="store_true",
        help="skip the grid: only experiment=ablation_refine_hio's setting, then the output weights",
    )
    args = parser.parse_args()
    register_resolvers()
    net, cfg = load_net(args.run_dir)
    datamodule = hydra.utils.instantiate(cfg.data, augmentation=None)
    datamodule.setup("fit")
    count = min(args.count, len(datamodule.val_set))  # the face stand-in has 100 validation images
    x = torch.stack([datamodule.val_set[i]["target"] for i in range(count)])
    y = hydra.utils.instantiate(cfg.module.forward_model)(x)
    with torch.inference_mode():
        x0 = net(y)

    def report(name: str, pred: torch.Tensor) -> float:
        metrics = {k: float(v.mean()) for k, v in rot180_invariant_metrics(pred, x).items()}
        print(f"{name:>44}: ssim_dr2 {metrics['ssim_dr2']:.4f}  mse {metrics['mse']:.5f}", flush=True)
        return metrics["mse"]

    report("network", x0)
    image_size, pad = int(cfg.data.image_size), int(cfg.data.pad)
    settings = (
        [("hio", 200, 0.9, 1.0)]
        if args.weights_only
        else [
            *(("hio", n, 0.9, None) for n in (100, 200, 500, 1000)),
            *(("hio", 200, b, None) for b in (0.6, 0.75, 0.99)),
            ("raar", 200, 0.87, None),
            *(("er", n, None, None) for n in (200, 1000)),
            *(("hio", n, b, 1.0) for n, b in ((200, 0.9), (200, 0.8), (200, 0.95), (500, 0.9))),
        ]
    )
    best: tuple[float, torch.Tensor, str] | None = None
    for algorithm, iterations, beta, upper in settings:
        refine = ClassicalPhaseRetrieval(algorithm, image_size, pad, iterations, beta, 1, 20, upper=upper)
        refined = refine(y, x0=x0)
        name = f"{algorithm} {iterations} (beta {beta}, upper {upper}) + er 20"
        mse = report(name, refined)
        if best is None or mse < best[0]:
            best = (mse, refined, name)
    assert best is not None
    for weight in (0.5, 0.6, 0.7, 0.8, 0.9):  # model.output_weight: w * refined + (1 - w) * network
        report(f"w {weight}: best above, averaged", weight * best[1] + (1 - weight) * x0)


if __name__ == "__main__":
    main()
