"""MediaPipe Selfie Segmentation (the model the ``mediapipe==0.10.14`` wheel ships) as a segmentation server.

Runs in its own environment, because mediapipe pins ``protobuf<5`` and ``numpy<2`` (the project's
environment has newer ones)::

    python3.11 -m venv .venv-mediapipe
    .venv-mediapipe/bin/pip install mediapipe==0.10.14 "numpy<2"
    .venv-mediapipe/bin/python benchmarks/mediapipe_selfie.py [--model 0|1]

Protocol (binary, on stdin / stdout; ``benchmarks/portrait_segmentation.py``'s ``MediaPipeNet`` speaks it,
so the task's own test step scores MediaPipe): the server first writes one JSON line
(``{"mediapipe": version, "model_selection": m}``), then for each request — an 8-byte little-endian
length and an ``.npy`` RGB uint8 (H, W, 3) image — it replies with the milliseconds of its ``process`` call
(float64), a length and an ``.npy`` float32 (H, W) person probability at the image's size. EOF ends it.
Model 0 is the "general" model (256×256 input), 1 the "landscape" one (144×256). Imports nothing from this
repository.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import time

import mediapipe as mp
import numpy as np


def read_frame(stream: io.BufferedReader) -> bytes | None:
    header = stream.read(8)
    if len(header) < 8:
        return None
    (length,) = struct.unpack("<Q", header)
    return stream.read(length)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=int, default=0, choices=(0, 1))
    args = parser.parse_args()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=args.model) as segmenter:
        segmenter.process(np.zeros((256, 256, 3), np.uint8))  # warm-up: graph start, interpreter allocation
        info = {"mediapipe": mp.__version__, "model_selection": args.model}
        stdout.write((json.dumps(info) + "\n").encode())
        stdout.flush()
        while (frame := read_frame(stdin)) is not None:
            image = np.ascontiguousarray(np.load(io.BytesIO(frame)))
            started = time.perf_counter()
            result = segmenter.process(image)
            ms = (time.perf_counter() - started) * 1000
            mask = np.asarray(result.segmentation_mask, dtype=np.float32)
            if mask.shape != image.shape[:2]:
                raise SystemExit(f"mask {mask.shape} is not the image's {image.shape[:2]}")
            buffer = io.BytesIO()
            np.save(buffer, mask)
            payload = buffer.getvalue()
            stdout.write(struct.pack("<dQ", ms, len(payload)) + payload)
            stdout.flush()


if __name__ == "__main__":
    main()
