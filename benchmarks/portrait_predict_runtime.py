"""The portrait predict path in each runtime (`run.py stage=predict runtime=torch|onnx`), timed without the
full portrait benchmark's trained runs: a 2-batch fit of the default model (speed does not depend on the
weights), then the benchmark's own ``predict_rate`` in interleaved rounds; prints the medians.

    python benchmarks/portrait_predict_runtime.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ROOT, say
from portrait_segmentation import predict_rate, test_items

from framework.resolvers import register_resolvers
from framework.runner import RUNTIMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-dir", type=Path, default=ROOT / "outputs/bench/portrait_speed/default_light")
    args = parser.parse_args()
    register_resolvers()
    if not (args.run_dir / "metrics.json").is_file():
        say("a 2-batch fit of the default portrait model")
        fit = ["task=portrait_segmentation", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
        fit += ["trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "data.val_size=4"]
        fit += ["data.test_size=8", "logger=csv", "callbacks.rich_progress_bar=null"]
        env = {**os.environ, "WANDB_MODE": "offline"}
        command = [sys.executable, "run.py", *fit, f"hydra.run.dir={args.run_dir}"]
        subprocess.run(command, cwd=ROOT, check=True, env=env)
    photos = [item["input"] for item in test_items(args.run_dir, 8)]
    rates: dict[str, list[float]] = {runtime: [] for runtime in RUNTIMES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for runtime in RUNTIMES:
                rate = predict_rate(args.run_dir, photos, args.threads, Path(tmp), runtime)
                rates[runtime].append(rate["images_per_s"])
                say(f"runtime={runtime}: {rate['images_per_s']} images/s ({rate['load']})")
    for runtime, values in rates.items():
        print(f"runtime={runtime}: median {statistics.median(values)} images/s at 256², rounds {values}")


if __name__ == "__main__":
    main()
