"""Training-step time of one config against variants of it, in interleaved rounds (a quick A/B of a speed
change; the committed tables are the benchmarks' own).

    python scripts/step_time.py experiment=prdad_haar --vs module.optimizer.fused=false
    python scripts/step_time.py task=super_resolution --vs module.channels_last=false --threads 1

Each side is ``benchmarks/harness/loops.BareLoop``: the config's module, optimiser and precision on its
DataModule's batches, collected once; mean ms per step after the warm-up steps, one line per round.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from harness.loops import BareLoop, compose_run_config  # noqa: E402

from framework.resolvers import register_resolvers  # noqa: E402


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("overrides", nargs="*", help="run.py overrides of the base config")
    parser.add_argument("--vs", nargs="+", action="append", default=[], help="overrides of a variant")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    register_resolvers()
    torch.set_num_threads(args.threads)
    sides = {"base": args.overrides, **{" ".join(v): [*args.overrides, *v] for v in args.vs}}
    with tempfile.TemporaryDirectory() as workdir:
        loops = {
            name: BareLoop(compose_run_config(overrides, Path(workdir)), args.steps, torch.device("cpu"))
            for name, overrides in sides.items()
        }
    print(f"{args.threads} thread(s), {args.steps} steps per round, ms per step:")
    for round_ in range(args.rounds):
        times = ", ".join(f"{name}: {loop.ms_per_step():.1f}" for name, loop in loops.items())
        print(f"round {round_ + 1}: {times}", flush=True)


if __name__ == "__main__":
    main()
