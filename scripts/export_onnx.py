"""Export a trained run's network to ONNX and check it against torch with ONNX Runtime.

    python scripts/export_onnx.py outputs/…/checkpoints/best-epoch012.ckpt [--output sr.onnx]

The run's LightningModule is built from its ``config_resolved.yaml`` (beside the checkpoint's folder, or
``--config``); its net is exported traced on the task's example input (``module.example_input(1)``), batch /
height / width dynamic where the net allows (input ``input``, output ``output``, float32; a net with its own
export, such as a quantisation-aware one, writes its int8 model), and run by ONNX Runtime on a batch of
another size than the traced one; the max |ONNX − torch| must be < ``--atol`` (or the net's own
``onnx_tolerance``). Prints the path of the .onnx file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.errors import UserError
from framework.export import export_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ckpt", help="a Lightning checkpoint of a run (…/checkpoints/*.ckpt)")
    parser.add_argument("--config", help="the run's config_resolved.yaml (default: found beside the ckpt)")
    parser.add_argument("--output", help="where the .onnx goes (default: the checkpoint path with .onnx)")
    parser.add_argument("--atol", type=float, default=1e-4, help="max allowed |ONNX Runtime − torch|")
    args = parser.parse_args(argv)
    try:
        path, diff = export_checkpoint(args.ckpt, args.output, args.config, args.atol)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ONNX Runtime vs torch: max abs diff {diff:.2e} (< {args.atol:g})", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
