"""Auto-correction benchmark: leaving the photo as it is, the classical one-tap corrections, and the learned
global transforms (image-adaptive 3D LUTs, Zero-DCE-style curves), on the synthetic test split and on the real
FiveK input / expert-C pairs; parameters; milliseconds for a 12-megapixel photo; the targets of issue 18.

    python benchmarks/auto_correction.py --full          # trains adaptive_lut and curves (≈1 h each here)
    python benchmarks/auto_correction.py --full --reuse  # evaluates finished runs, resumes interrupted ones
    python benchmarks/auto_correction.py                 # quick: tiny trainings and test sets (minutes)

Every quality figure is the `stage=test` (or fit → test) metrics.json of `python run.py task=auto_correction
model=<method> …` in outputs/bench/auto_correction/<method>/ (quick: …/quick/<method>/): PSNR and SSIM on RGB
at data range 1 and the mean CIEDE2000 ΔE, on 8-bit-rounded images (`metrics.color`), averaged per image.

Speed: one 12-Mpx photo (4000×3000, a FiveK input upscaled bicubically, 8-bit RGB in memory), corrected to an
8-bit photo: a learned model's transform predicted from the thumbnail and applied by Pillow on both cores
(`operators.global_correction.correct_photo`, what `stage=predict` runs), also the same model applied by
torch in float32 at full resolution, and each classical method in torch (float32, full resolution). All
variants are timed in the same interleaved rounds on 2 threads, median; the load average is recorded.
Writes benchmarks/results/auto_correction.{md,json} (quick: auto_correction_quick.*) and a before / after
picture grid, benchmarks/results/auto_correction.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from common import RESULTS, ROOT, machine, merge_into_previous, run_experiment

sys.path.insert(0, str(ROOT))
from omegaconf import OmegaConf
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF

from datamodules.io import save_image
from framework.export import load_net
from framework.resolvers import register_resolvers
from framework.results import atomic_write_text
from operators.global_correction import correct_photo, from_pil, is_global, to_pil

NAME = "auto_correction"
TEST_SETS = {
    "synthetic": "synthetic test split",
    "fivek_pairs": "FiveK pairs (DPE, expert C)",
    "fivek_dpe_examples": "FiveK DPE examples (expert C)",
}
SPEED_SIZE = (4000, 3000)  # 12 Mpx
SPEED_SOURCE = ROOT.parent / "shared" / "data" / "autocorrect" / "fivek_pairs" / "input" / "a0535.png"
STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", flush=True)


@dataclass
class Method:
    """One row group: ``python run.py task=auto_correction model=<model> …`` (fit → test, or stage=test)."""

    name: str
    model: str
    trained: bool
    overrides: list[str] = field(default_factory=list)


QUICK_TRAIN = [
    "trainer.max_epochs=1",
    "data.train_size=64",
    "data.val_size=8",
    "data.test_size=8",
    "callbacks.image_logger=null",
]
QUICK_TEST = ["data.test_size=8"]
METHODS = [
    Method("leave_as_is", "leave_as_is", trained=False),
    Method("gray_world", "gray_world", trained=False),
    Method("auto_levels", "auto_levels", trained=False),
    Method("auto_gamma", "auto_gamma", trained=False),
    Method("clahe", "clahe", trained=False),
    Method("classical_combined", "classical_combined", trained=False),
    Method("adaptive_lut", "adaptive_lut", trained=True, overrides=["+trainer.max_time=00:01:05:00"]),
    Method("curves", "curves", trained=True, overrides=["+trainer.max_time=00:01:05:00"]),
]
CLASSICAL = {"gray_world", "auto_levels", "auto_gamma", "clahe", "classical_combined"}
# Zeng, Cai, Li, Cao, Zhang, "Learning Image-adaptive 3D Lookup Tables for High Performance Photo
# Enhancement in Real-time", IEEE TPAMI 2020: FiveK at 480p, expert C, its own 500-image test split. The
# figures are issue 18's; the paper's table could not be opened offline to check them.
PUBLISHED = [
    ("3D-LUT (Zeng et al., TPAMI 2020)", 25.21),
    ("HDRNet (as reported by Zeng et al., TPAMI 2020)", 24.66),
]
PUBLISHED_DATA = "FiveK 480p, expert C, 500 test images"


# -- runs --------------------------------------------------------------------------------------------------
def run_method(method: Method, quick: bool, reuse: bool) -> dict[str, Any]:
    base = RUNS_DIR / ("quick" if quick else "") / method.name
    overrides = ["task=auto_correction", f"model={method.model}"]
    if method.trained:
        overrides += QUICK_TRAIN if quick else method.overrides
    else:
        overrides += ["stage=test", *(QUICK_TEST if quick else [])]
    say(f"{method.name}: {'fit → test' if method.trained else 'stage=test'} in {base}")
    log = ROOT / "outputs" / "logs" / f"bench_{NAME}{'_quick' if quick else ''}_{method.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return {"run_dir": base, **run_experiment(overrides, base, reuse, log)}


def test_set_sizes(run_dir: Path) -> dict[str, int]:
    """Images in each test set of a run, from its own config (the split is a function of it)."""
    import hydra

    cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    return {name: len(d) for name, d in zip(datamodule.test_set_names, datamodule.test_set, strict=True)}


# -- speed -------------------------------------------------------------------------------------------------
def speed_photo() -> Image.Image:
    return Image.open(SPEED_SOURCE).convert("RGB").resize(SPEED_SIZE, Image.Resampling.BICUBIC)


def load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def time_rounds(variants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of every variant, in interleaved rounds after one warm-up call each."""
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for fn in variants.values():
            fn()
        for _ in range(rounds):
            for name, fn in variants.items():
                started = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


def speed_variants(nets: dict[str, nn.Module], photo: Image.Image) -> dict[str, Callable[[], Any]]:
    """What each method does to the 12-Mpx photo: 8-bit in, 8-bit out."""
    variants: dict[str, Callable[[], Any]] = {}
    for name, net in nets.items():
        net.eval()
        if is_global(net):
            variants[name] = lambda net=net: correct_photo(net, photo, threads=2)
            variants[f"{name} (torch float32)"] = lambda net=net: to_pil(net(from_pil(photo)[None])[0])
        elif name != "leave_as_is":
            variants[name] = lambda net=net: to_pil(net(from_pil(photo)[None])[0])
    return variants


# -- picture -----------------------------------------------------------------------------------------------
def picture(nets: dict[str, nn.Module], run_dir: Path, path: Path) -> None:
    """Rows: two synthetic test pairs and two real pairs; columns: input | classical | learned | target."""
    import hydra

    cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    synthetic, *pairs = datamodule.test_set
    picks = [(synthetic, 0), (synthetic, 3), (pairs[0], 2), (pairs[-1], 5)]
    items = [dataset[index % len(dataset)] for dataset, index in picks]
    columns = [
        name for name in ("auto_levels", "classical_combined", "adaptive_lut", "curves") if name in nets
    ]
    rows = []
    with torch.inference_mode():
        for item in items:
            x, y = (torch.as_tensor(item[key])[None] for key in ("input", "target"))
            images = [x, *(nets[name](x).clamp(0, 1) for name in columns), y]  # corrected whole, as tested
            side = min(x.shape[-2:])
            rows.append(
                torch.cat([TF.resize(TF.center_crop(im, [side, side]), [256, 256]) for im in images], -1)
            )
    save_image(torch.cat(rows, dim=-2)[0], path)
    say(f"picture: {path} (columns: input | {' | '.join(columns)} | target)")


# -- table -------------------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict[str, Any]], speed: dict[str, Any], targets: list[str]) -> str:
    lines = [
        "| method | data | n | PSNR | SSIM | ΔE00 | params | train min | ms / 12 Mpx |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["metrics"]
        name = row["method"] + (" (paper)" if row.get("source") == "paper" else "")
        lines.append(
            f"| {name} | {row['dataset']} | {fmt(row.get('n'))} | {fmt(m.get('psnr'))} | "
            f"{fmt(m.get('ssim'), 4)} | {fmt(m.get('delta_e00'))} | {fmt(row.get('params'))} | "
            f"{fmt(row.get('train_minutes'), 1)} | {fmt(row.get('ms_12mpx'), 0)} |"
        )
    lines += [
        "",
        f"Speed ({speed['photo']}, {speed['threads']} threads, median of {speed['rounds']} "
        f"interleaved rounds; load average before / after: {speed['load_before']} / {speed['load_after']}):",
        "",
        "| variant | ms |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ms:.0f} |" for name, ms in speed["ms"].items()]
    lines += ["", "Targets (issue 18):", "", *targets, ""]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "not met"


def check_targets(rows: list[dict[str, Any]], speed_ms: dict[str, float]) -> list[str]:
    """Issue 18's targets for each learned model, one line each, judged on the rows."""

    def of(method: str, key: str) -> dict[str, float]:
        found = (r for r in rows if r["method"] == method and r["dataset"] == TEST_SETS[key])
        return next((r["metrics"] for r in found if r.get("source") != "paper"), {})

    classical = {m: of(m, "synthetic") for m in CLASSICAL if of(m, "synthetic")}
    if not classical:
        return ["- (no classical rows to judge against: run the classical methods too)"]
    best = max(classical, key=lambda m: classical[m]["psnr"])
    least_de = min(v["delta_e00"] for v in classical.values())
    lines = []
    for method in ("adaptive_lut", "curves"):
        synthetic = of(method, "synthetic")
        if not synthetic:
            continue
        gain = synthetic["psnr"] - classical[best]["psnr"]
        lines.append(
            f"- `{method}`, synthetic split: {synthetic['psnr']:.2f} dB, {gain:+.2f} dB over the best "
            f"classical "
            f"method (`{best}`, {classical[best]['psnr']:.2f} dB): target ≥ +5 dB {verdict(gain >= 5)}; "
            f"ΔE00 {synthetic['delta_e00']:.2f}, the lowest classical {least_de:.2f}: target ≤ "
            f"{least_de / 2:.2f} {verdict(synthetic['delta_e00'] <= least_de / 2)}"
        )
        for key in ("fivek_pairs", "fivek_dpe_examples"):
            real = of(method, key)
            ok = real["psnr"] >= 23 and real["delta_e00"] <= 6
            lines.append(
                f"- `{method}`, {TEST_SETS[key]}: {real['psnr']:.2f} dB, ΔE00 {real['delta_e00']:.2f}: "
                f"target ≥ 23 dB and ≤ 6 {verdict(ok)}"
            )
        ms = speed_ms.get(method, float("nan"))
        count = next(r["params"] for r in rows if r["method"] == method)
        lines.append(f"- `{method}`, 12-Mpx photo: {ms:.0f} ms: target ≤ 500 ms {verdict(ms <= 500)}")
        lines.append(f"- `{method}`: {count:,} parameters: target < 1 M {verdict(count < 1_000_000)}")
    return lines


RUNS_DIR = ROOT / "outputs" / "bench" / NAME


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the committed benchmark (else quick)")
    parser.add_argument(
        "--reuse", action="store_true", help="evaluate finished runs instead of rerunning them"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated methods to rerun, merged into the results"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (12-Mpx photo)")
    args = parser.parse_args()
    quick = not args.full
    name = NAME if args.full else f"{NAME}_quick"
    register_resolvers()
    torch.set_num_threads(2)
    only = [m for m in args.only.split(",") if m]
    methods = [m for m in METHODS if not only or m.name in only]

    rows: list[dict[str, Any]] = []
    nets: dict[str, nn.Module] = {}
    sizes: dict[str, int] | None = None
    for method in methods:
        result = run_method(method, quick, args.reuse)
        run_dir = result["run_dir"]
        sizes = sizes or test_set_sizes(run_dir)
        ckpt = result.get("tested_checkpoint")
        if ckpt:
            nets[method.name], _ = load_net(ckpt)
        else:
            import hydra

            nets[method.name] = hydra.utils.instantiate(
                OmegaConf.load(run_dir / "config_resolved.yaml").module.net
            )
        fit = result.get("fit_seconds")
        for key, label in TEST_SETS.items():
            metrics = {
                metric: round(float(result["metrics"][f"test/{key}/{metric}"]), 4)
                for metric in ("psnr", "ssim", "delta_e00")
                if f"test/{key}/{metric}" in result["metrics"]
            }
            rows.append(
                {
                    "method": method.name,
                    "dataset": label,
                    "n": sizes.get(key),
                    "metrics": metrics,
                    "params": sum(p.numel() for p in nets[method.name].parameters()),
                    "train_minutes": round(fit / 60, 1) if fit else None,
                    "checkpoint": ckpt,
                }
            )

    photo = speed_photo()
    load_before = load_average()
    say(f"timing {len(nets)} methods on a {photo.width}×{photo.height} photo, load {load_before}")
    seconds = time_rounds(speed_variants(nets, photo), args.rounds)
    speed_ms = {name: round(s * 1000, 1) for name, s in seconds.items()}
    speed = {
        "photo": f"{photo.width}×{photo.height} 8-bit RGB",
        "threads": 2,
        "rounds": args.rounds,
        "load_before": load_before,
        "load_after": load_average(),
        "ms": speed_ms,
    }
    for row in rows:
        row["ms_12mpx"] = 0.0 if row["method"] == "leave_as_is" else speed_ms.get(row["method"])
    rows += [
        {"method": name, "dataset": PUBLISHED_DATA, "metrics": {"psnr": psnr}, "source": "paper"}
        for name, psnr in PUBLISHED
    ]
    command = "python benchmarks/auto_correction.py" + (" --full" if args.full else "")
    if only:
        rows, command = merge_into_previous(name, rows, f"{command} --only {args.only}")
    targets = check_targets(rows, speed_ms)
    payload_md = f"# Auto-correction ({'full' if args.full else 'quick'})\n\n" + markdown(
        rows, speed, targets
    )
    payload = {
        "name": name,
        "command": command,
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "rows": rows,
        "speed": speed,
        "targets": targets,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(RESULTS / f"{name}.md", payload_md)
    print(payload_md)
    if "adaptive_lut" in nets:
        picture(nets, RUNS_DIR / ("quick" if quick else "") / "adaptive_lut", RESULTS / f"{name}.png")


if __name__ == "__main__":
    main()
