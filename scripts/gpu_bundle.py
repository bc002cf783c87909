"""`make gpu-bundle`: what `make bench-gpu` needs on a GPU machine that has PyTorch and Lightning but no
network: the project's other dependencies as wheels for its Python, and the data and weights of
benchmarks/gpu.py (under 60 MB), in dist/gpu-bundle/ (git-ignored; copy it with the checkout).

    python -m scripts.gpu_bundle                         # CPython 3.12 wheels (the lent H200's Python)
    python -m scripts.gpu_bundle --python-version 3.11 --out /tmp/bundle

Wheels: hydra-core, omegaconf < 2.4, antlr4-python3-runtime 4.9.3 (built here: PyPI has only its sdist),
kornia + kornia_rs, pydantic and its four dependencies, tflite + flatbuffers (what that machine lacked when
`trainer=gpu` was last run there). Data: Fashion-MNIST's gzipped IDX files (Debian's package), T91, Set5 and
Set14 from ../shared/data/sr, the style paintings; weights: the normalised VGG19 and the MobileNetV2 ImageNet
file.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MOBILENET = "tf2_mobilenet_v2_1.0_224_ptq.tflite"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
BINARY_WHEELS = [
    "hydra-core>=1.3.2",
    "omegaconf>=2.3,<2.4",
    "kornia>=0.7",
    "kornia_rs",
    "pydantic>=2",
    "pydantic_core",
    "annotated_types",
    "typing_inspection",
    "typing_extensions",
    "tflite>=2.10",
    "flatbuffers",
]
SOURCE_ONLY = ["antlr4-python3-runtime==4.9.3"]
DATA = {  # bundle path -> source
    "fashion-mnist": FASHION_MNIST,
    "shared/data/sr/T91": SHARED / "data" / "sr" / "T91",
    "shared/data/sr/Set5": SHARED / "data" / "sr" / "Set5",
    "shared/data/sr/Set14": SHARED / "data" / "sr" / "Set14",
    "shared/data/style/styles": SHARED / "data" / "style" / "styles",  # the style module's paintings
    "shared/weights/vgg_normalised_conv3_1.pth": SHARED / "weights" / "vgg_normalised_conv3_1.pth",
    f"shared/weights/{MOBILENET}": SHARED / "weights" / MOBILENET,
}
DATA_LIMIT_MB = 60


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "gpu-bundle")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--platform", default="manylinux_2_28_x86_64")
    args = parser.parse_args()
    wheels = args.out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = (args.platform, "manylinux_2_17_x86_64", "manylinux2014_x86_64")
    target = ["--python-version", args.python_version, "--implementation", "cp"]
    target += [argument for platform in platforms for argument in ("--platform", platform)]
    pip("download", "--quiet", "--no-deps", "--only-binary=:all:", *target, "-d", str(wheels), *BINARY_WHEELS)
    pip("wheel", "--quiet", "--no-deps", "-w", str(wheels), *SOURCE_ONLY)  # pure Python: any version
    for relative, source in DATA.items():
        if not source.exists():
            raise SystemExit(f"error: {source} is missing: install dataset-fashion-mnist / restore ../shared")
        destination = args.out / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, destination, dirs_exist_ok=True)
        else:
            shutil.copy2(source, destination)
    data_mb = sum(size_mb(args.out / relative) for relative in DATA)
    if data_mb > DATA_LIMIT_MB:
        raise SystemExit(
            f"error: the bundle's data is {data_mb:.0f} MB, over {DATA_LIMIT_MB} MB: drop a folder"
        )
    count = len(list(wheels.glob("*.whl")))
    print(f"{args.out}: {count} wheels ({size_mb(wheels):.1f} MB), data {data_mb:.1f} MB")


if __name__ == "__main__":
    main()
