"""MediaPipe Selfie Segmentation (the model the ``mediapipe==0.10.14`` wheel ships) on a folder of images.

Runs in its own environment, because mediapipe pins ``protobuf<5`` and ``numpy<2`` (the project's
environment has newer ones)::

    python3.11 -m venv .venv-mediapipe
    .venv-mediapipe/bin/pip install mediapipe==0.10.14 "numpy<2"
    .venv-mediapipe/bin/python benchmarks/mediapipe_selfie.py <in_dir> <out_dir> [--model 0|1]

``<in_dir>`` holds ``<name>.npy`` RGB uint8 (H, W, 3) arrays, the very pixels our test step scores (written
by ``benchmarks/portrait_segmentation.py``); for each, ``<out_dir>/<name>.npy`` gets MediaPipe's person
probability (H, W) float32 at the image's size, and ``<out_dir>/timings.json`` the milliseconds of each
``process`` call (after one warm-up call). Model 0 is the "general" model (256×256 input), 1 the
"landscape" one (144×256). Imports nothing from this repository.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mediapipe as mp
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model", type=int, default=0, choices=(0, 1))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(args.in_dir.glob("*.npy"))
    if not files:
        raise SystemExit(f"no .npy images in {args.in_dir}")
    timings = {}
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=args.model) as segmenter:
        segmenter.process(np.load(files[0]))  # warm-up: graph start and interpreter allocation
        for file in files:
            image = np.ascontiguousarray(np.load(file))
            started = time.perf_counter()
            result = segmenter.process(image)
            timings[file.stem] = (time.perf_counter() - started) * 1000
            mask = np.asarray(result.segmentation_mask, dtype=np.float32)
            if mask.shape != image.shape[:2]:
                raise SystemExit(f"{file.name}: mask {mask.shape} is not the image's {image.shape[:2]}")
            np.save(args.out_dir / file.name, mask)
    info = {"mediapipe": mp.__version__, "model_selection": args.model, "ms": timings}
    (args.out_dir / "timings.json").write_text(json.dumps(info, indent=1))
    print(f"{len(files)} images, median {np.median(list(timings.values())):.1f} ms")


if __name__ == "__main__":
    main()
