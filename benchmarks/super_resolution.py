"""Super-resolution benchmark: bicubic, the paper's ESPCN on T91, the slide's ESPCN (λ = 0 and λ > 0), and
JPEG de-blocking + ESPCN against ESPCN alone on the same JPEG inputs; Y-PSNR / SSIM on Set5 and Set14; speed.

    python benchmarks/super_resolution.py --full          # trains every experiment (hours on 2 CPU cores)
    python benchmarks/super_resolution.py --full --reuse  # only evaluates runs that already finished
    python benchmarks/super_resolution.py [--quick]       # tiny trainings, same tables (minutes)

Every trained row comes from `python run.py experiment=<experiment> …` into
outputs/bench/super_resolution/<run>/ (quick: outputs/bench/super_resolution/quick/<run>/); its best
checkpoint is evaluated here on whole Set5 / Set14 images as the task's test step does: mod-crop to the scale,
LR = bicubic ↓ (antialiased, Keys a = −0.5) → 8 bit (→ JPEG when the run says so), metrics on the 8-bit Y
channel with `scale` border pixels cropped (BasicSR's convention). Published rows: bicubic and ESPCN
(91 images) from Shi et al., CVPR 2016.

Speed: frames per second for a 1920×1080 OUTPUT at ×4 (LR 480×270, batch 1) on this machine's CPU cores
(`--threads`), each variant timed in interleaved rounds in this process, as a ratio to bicubic, with the
conv GFLOP/s reached as a fraction of the GFLOP/s of a large conv (128→128, 3×3, 256×256) timed in the same
rounds, and the Set5 ×4 Y-PSNR of every reduced-precision path against fp32.
Writes benchmarks/results/super_resolution.{md,json} (quick: super_resolution_quick.*) and side-by-side PNGs
(bicubic | ours | ground truth) of a Set5 and a Set14 image.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from common import (
    RESULTS,
    ROOT,
    machine,
    merge_into_previous,
    previous_results,
    reusable,
    run_experiment,
)

sys.path.insert(0, str(ROOT))
from torch import Tensor, nn

from datamodules.io import save_image
from datamodules.super_resolution import load_folders
from framework.export import export_int8_onnx, export_onnx, load_net, onnx_session, quantize_int8
from framework.resolvers import register_resolvers
from framework.results import atomic_write_text, read_results
from metrics.super_resolution import psnr_y, sr_metrics
from models.espcn import BicubicUpsampler, espcn, espcn_paper
from operators.degradation import make_lr, mod_crop

SR_DATA = ROOT.parent / "shared" / "data" / "sr"
TEST_SETS = ("Set5", "Set14")
FIGURES = (("Set5", "img_003", "butterfly"), ("Set14", "img_014", "zebra"))
SPEED_LR = (270, 480)  # ×4 → 1080×1920
SPEED_SCALE = 4
STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", flush=True)


@dataclass
class Run:
    """One training run of the benchmark: ``python run.py experiment=… overrides``."""

    name: str
    experiment: str
    overrides: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    init_from: str | None = None  # the run whose tested checkpoint it fine-tunes (init_weights=)


QUICK = [
    "trainer.max_epochs=1",
    "data.samples_per_epoch=256",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.image_logger=null",
]
RUNS = [
    Run("espcn_paper_t91_x3", "sr_espcn_paper_t91", quick=[*QUICK, "data.samples_per_epoch=1024"]),
    Run(
        "espcn_paper_t91_x4",
        "sr_espcn_paper_t91_x4",
        quick=[*QUICK, "data.samples_per_epoch=1024"],
        init_from="espcn_paper_t91_x3",
    ),
    Run("espcn_x4", "sr_espcn_x4", quick=QUICK),
    Run("espcn_x3", "sr_espcn_x3", quick=QUICK, init_from="espcn_x4"),
    Run("edsr_x4", "sr_edsr_x4", quick=QUICK),
    Run("espcn_vgg_x4", "sr_espcn_vgg_x4", quick=[*QUICK, "data.samples_per_epoch=64"], init_from="espcn_x4"),
    Run("deblock_espcn_x4", "sr_deblock_espcn_x4", quick=QUICK),
    Run("espcn_jpeg_x4", "sr_espcn_jpeg_x4", quick=QUICK),
    Run("espcn_int8_qat_x4", "sr_espcn_int8_qat_x4", quick=QUICK, init_from="espcn_x4"),
]
# Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional
# Neural Network", CVPR 2016 (Y-PSNR, border = scale).
PAPER = "Shi et al., CVPR 2016, Table"
PUBLISHED = [
    ("bicubic", "Set5", 3, 30.39),
    ("bicubic", "Set5", 4, 28.42),
    ("bicubic", "Set14", 3, 27.53),
    ("bicubic", "Set14", 4, 25.99),
    ("espcn_paper (91 images)", "Set5", 3, 32.55),
]


# -- quality ---------------------------------------------------------------------------------------------
_PAIRS: dict[tuple[str, int, int | None], list[tuple[str, Tensor, Tensor]]] = {}
MAX_IMAGES: int | None = None  # quick mode: the first images of each test set only (smaller n)


def eval_pairs(dataset: str, scale: int, jpeg: int | None) -> list[tuple[str, Tensor, Tensor]]:
    """(name, LR, HR) of every image of ``dataset``, as the task's test step makes them."""
    key = (dataset, scale, jpeg)
    if key not in _PAIRS:
        folder = SR_DATA / dataset
        names = sorted(p.stem for p in folder.iterdir() if p.suffix == ".png")
        pairs = []
        for name, image in list(zip(names, load_folders([str(folder)]), strict=True))[:MAX_IMAGES]:
            hr = mod_crop(image, scale).float().div(255).unsqueeze(0)
            pairs.append((name, make_lr(hr, scale, jpeg), hr))
        _PAIRS[key] = pairs
    return _PAIRS[key]


@torch.inference_mode()
def evaluate(
    fn: Callable[[Tensor], Tensor], dataset: str, scale: int, jpeg: int | None, psnr_only: bool = False
) -> dict[str, float]:
    """Mean Y-PSNR / Y-SSIM / RGB-PSNR (or Y-PSNR only) of ``fn`` (LR → SR) over the test set (8-bit,
    border = scale), as the task's test step computes them."""
    values: dict[str, list[float]] = {}
    for _, lr, hr in eval_pairs(dataset, scale, jpeg):
        pred = fn(lr).float().clamp(0, 1)
        scores = {"psnr_y": psnr_y(pred, hr, scale)} if psnr_only else sr_metrics(pred, hr, scale)
        for key, value in scores.items():
            values.setdefault(key, []).append(float(value))
    return {key: round(statistics.fmean(v), 4) for key, v in values.items()}


def degradation(jpeg: int | None) -> str:
    return "bicubic" if jpeg is None else f"bicubic+jpeg{jpeg}"


def quality_rows(
    label: str, net: nn.Module, scale: int, jpeg: int | None, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    return [
        {
            "method": label,
            "dataset": dataset,
            "scale": scale,
            "degradation": degradation(jpeg),
            "n": len(eval_pairs(dataset, scale, jpeg)),
            "metrics": evaluate(net, dataset, scale, jpeg),
            **extra,
        }
        for dataset in TEST_SETS
    ]


# -- speed -----------------------------------------------------------------------------------------------
def conv_gflop(net: nn.Module, example: Tensor) -> float:
    """GFLOP of the Conv2d layers of one forward pass (2 · MACs; activations and reshapes not counted)."""
    total = 0.0

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += 2.0 * output.numel() * kernel

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        net(example)
    for handle in handles:
        handle.remove()
    return total / 1e9


def bf16(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    def run(x: Tensor) -> Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fn(x).float()

    return run


def channels_last(net: nn.Module) -> Callable[[Tensor], Tensor]:
    net = copy.deepcopy(net).to(memory_format=torch.channels_last)
    return lambda x: net(x.contiguous(memory_format=torch.channels_last))


def ort_fn(path: Path, threads: int) -> Callable[[Tensor], Tensor]:
    session = onnx_session(path, threads)
    return lambda x: torch.from_numpy(session.run(["sr"], {"lr": x.float().contiguous().numpy()})[0])


def ort_int8(fp32: Path, scale: int, threads: int) -> Callable[[Tensor], Tensor]:
    """ONNX Runtime with int8 QDQ convolutions after training (static, per-channel weights) of the exported
    fp32 model, calibrated on T91 LR crops."""
    calibration = [
        make_lr(mod_crop(image[:, :96, :96], scale).float().div(255).unsqueeze(0), scale)
        for image in load_folders([str(SR_DATA / "T91")])[::12]
    ]
    return ort_fn(quantize_int8(fp32, fp32.with_name("speed_int8.onnx"), calibration), threads)


def time_rounds(variants: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of every variant, timed in interleaved rounds after one warm-up call each,
    so a change of load on this shared machine hits all variants alike."""
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


def speed_rows(
    nets: dict[str, nn.Module], trained: dict[str, bool], threads: int, rounds: int, workdir: Path
) -> list[dict[str, Any]]:
    """fps of every variant of ``nets`` ("espcn", "espcn_paper": ×4; optional "espcn_qat", the int8
    quantisation-aware fine-tune of "espcn") for a 1080p output; Set5 Y-PSNR and its change against the fp32
    "espcn" / "espcn_paper" for the ``trained`` ones."""
    x = torch.rand(1, 3, *SPEED_LR, generator=torch.Generator().manual_seed(0))
    reference = nn.Conv2d(128, 128, 3, padding=1).eval()
    big = torch.rand(1, 128, 256, 256)
    reference_gflop = conv_gflop(reference, big)
    espcn_net, paper_net = nets["espcn"], nets["espcn_paper"]
    export_onnx(espcn_net, workdir / "speed_fp32.onnx")
    export_onnx(paper_net, workdir / "speed_paper.onnx")
    variants: dict[str, tuple[str, str, Callable[[Tensor], Tensor]]] = {
        "bicubic": ("bicubic", "fp32", BicubicUpsampler(SPEED_SCALE)),
        "espcn fp32": ("espcn", "fp32", espcn_net),
        "espcn bf16": ("espcn", "bf16 autocast", bf16(espcn_net)),
        "espcn cl": ("espcn", "channels-last fp32", channels_last(espcn_net)),
        "espcn cl bf16": ("espcn", "channels-last + bf16 autocast", bf16(channels_last(espcn_net))),
        "espcn ort": ("espcn", "ONNX Runtime fp32", ort_fn(workdir / "speed_fp32.onnx", threads)),
        "espcn ort int8": (
            "espcn",
            "ONNX Runtime int8 (QDQ)",
            ort_int8(workdir / "speed_fp32.onnx", espcn_net.upscale_factor, threads),
        ),
    }
    if "espcn_qat" in nets:  # its own int8 ranges, learned in training
        qat = export_int8_onnx(nets["espcn_qat"], workdir / "speed_int8_qat.onnx")
        variants["espcn ort int8 qat"] = ("espcn", "ONNX Runtime int8 (QAT)", ort_fn(qat, threads))
    variants |= {
        "paper fp32": ("espcn_paper", "fp32", paper_net),
        "paper cl": ("espcn_paper", "channels-last fp32", channels_last(paper_net)),
        "paper ort": ("espcn_paper", "ONNX Runtime fp32", ort_fn(workdir / "speed_paper.onnx", threads)),
    }
    timed: dict[str, Callable[[], Any]] = {name: (lambda f=fn: f(x)) for name, (_, _, fn) in variants.items()}
    reference_cl = channels_last(reference)
    timed["large conv fp32"] = lambda: reference(big)
    timed["large conv bf16"] = lambda: bf16(reference)(big)
    timed["large conv cl fp32"] = lambda: reference_cl(big)
    timed["large conv cl bf16"] = lambda: bf16(reference_cl)(big)
    seconds = time_rounds(timed, rounds)
    peak = {  # the faster memory layout of each dtype
        dtype: reference_gflop / min(seconds[f"large conv {dtype}"], seconds[f"large conv cl {dtype}"])
        for dtype in ("fp32", "bf16")
    }
    say(f"timed; large conv {peak['fp32']:.1f} GFLOP/s fp32, {peak['bf16']:.1f} bf16 ({threads} threads)")

    gflop = {"espcn": conv_gflop(espcn_net, x), "espcn_paper": conv_gflop(paper_net, x), "bicubic": 0.0}
    set5_fp32 = {
        model: evaluate(net, "Set5", SPEED_SCALE, None, psnr_only=True)["psnr_y"]
        for model, net in nets.items()
        if trained.get(model)
    }
    rows = []
    for name, (model, variant, fn) in variants.items():
        fps = 1.0 / seconds[name]
        dtype = "bf16" if "bf16" in variant else "fp32"
        metrics: dict[str, float | None] = {
            "fps": round(fps, 3),
            "fps_ratio_vs_bicubic": round(fps * seconds["bicubic"], 4),
            "gflop_per_frame": round(gflop[model], 2),
            "gflops": round(gflop[model] * fps, 1),
            "fraction_of_conv_peak": round(gflop[model] * fps / peak[dtype], 3) if gflop[model] else None,
            "conv_peak_gflops": round(peak[dtype], 1),
        }
        if model in set5_fp32:
            psnr = evaluate(fn, "Set5", SPEED_SCALE, None, psnr_only=True)["psnr_y"]
            metrics["psnr_y_set5"] = psnr
            metrics["psnr_y_delta_vs_fp32"] = round(psnr - set5_fp32[model], 4)
        rows.append(
            {
                "method": model,
                "variant": variant,
                "dataset": "1920x1080 output",
                "scale": SPEED_SCALE,
                "protocol": "speed",
                "threads": threads,
                "metrics": metrics,
            }
        )
    return rows


# -- figures ---------------------------------------------------------------------------------------------
@torch.inference_mode()
def side_by_side(net: nn.Module, scale: int, suffix: str) -> list[Path]:
    """bicubic | ours | ground truth, 4 white pixels apart, for one Set5 and one Set14 image."""
    paths = []
    bicubic = BicubicUpsampler(scale)
    for dataset, stem, label in FIGURES:
        path = SR_DATA / dataset / f"{stem}.png"
        if not path.is_file():
            continue
        hr = mod_crop(load_folders([str(path)])[0], scale).float().div(255).unsqueeze(0)
        lr = make_lr(hr, scale)
        panels = [bicubic(lr), net(lr).clamp(0, 1), hr]
        gap = torch.ones(1, 3, hr.shape[-2], 4)
        row = torch.cat([panels[0], gap, panels[1], gap, panels[2]], dim=-1)
        path = RESULTS / f"super_resolution{suffix}_{dataset.lower()}_{label}.png"
        save_image(row[0], path)
        paths.append(path)
    return paths


# -- tables ----------------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def psnr(method: str, dataset: str, scale: int, jpeg: int | None = None) -> float | None:
        for row in rows:
            if (row["method"], row["dataset"], row.get("scale"), row.get("degradation")) == (
                method,
                dataset,
                scale,
                degradation(jpeg),
            ) and row.get("source") != "paper":
                return row["metrics"]["psnr_y"]
        return None

    found: list[dict[str, Any]] = []

    def target(name: str, value: float | None, goal: float, higher: bool = True) -> None:
        met = None if value is None else (value >= goal if higher else value <= goal)
        found.append({"target": name, "value": value, "goal": goal, "met": met})

    target(
        "espcn_paper_t91_x3: Set5 ×3 Y-PSNR ≥ 32.55 (paper, 91 images)",
        psnr("espcn_paper_t91_x3", "Set5", 3),
        32.55,
    )
    # the best model trained on T91 + BSD200 (clean ×4 inputs, by Set5), judged on both test sets
    x4 = [
        row["method"]
        for row in rows
        if row.get("train_data") == "T91+BSD200" and row.get("source") != "paper"
    ]
    best = max(x4, key=lambda method: psnr(method, "Set5", 4) or 0.0, default="espcn_x4")
    target(f"{best}: Set5 ×4 Y-PSNR ≥ 30.9 (best on T91+BSD200)", psnr(best, "Set5", 4), 30.9)
    target(f"{best}: Set14 ×4 Y-PSNR ≥ 27.7", psnr(best, "Set14", 4), 27.7)
    # De-blocking + SR against SR alone on the same JPEG-q30 inputs: against the ESPCN as trained (clean
    # inputs: the comparison) and against one trained on the same JPEG inputs (equal-data control)
    baselines = (("espcn_x4", "espcn (clean-trained)"), ("espcn_jpeg_x4", "espcn_jpeg (JPEG-trained)"))
    for baseline, label in baselines:
        for dataset in TEST_SETS:
            ours, base = psnr("deblock_espcn_x4", dataset, 4, 30), psnr(baseline, dataset, 4, 30)
            gain = None if ours is None or base is None else round(ours - base, 3)
            target(f"deblock_espcn − {label}, JPEG-q30 inputs, {dataset} ×4 ≥ 0.3 dB", gain, 0.3)
    speed = [row for row in rows if row.get("protocol") == "speed" and row["method"] == "espcn"]
    if speed:  # the speed target counts a path only if it keeps the fp32 model's PSNR (loses ≤ 0.05 dB)

        def psnr_loss(row: dict[str, Any]) -> float | None:  # dB below the fp32 model (< 0: above it)
            delta = row["metrics"].get("psnr_y_delta_vs_fp32")
            return None if delta is None else round(-delta, 4)

        for row in speed:
            if row["variant"] != "fp32" and psnr_loss(row) is not None:
                target(
                    f"espcn {row['variant']}: Set5 Y-PSNR ≤ 0.05 dB below fp32", psnr_loss(row), 0.05, False
                )

        def keeps_psnr(row: dict[str, Any]) -> bool:
            loss = psnr_loss(row)
            return row["variant"] == "fp32" or (loss is not None and loss <= 0.05)

        exact = [row for row in speed if keeps_psnr(row)]
        best = max(exact, key=lambda row: row["metrics"]["fps"])
        target(
            f"espcn ×4 1080p ≥ 10 fps within 0.05 dB of fp32 (fastest such path: {best['variant']})",
            best["metrics"]["fps"],
            10.0,
        )
    return found


def epochs(row: dict[str, Any]) -> str:
    """The epochs of a run, and the run whose weights it started from (a fine-tune's minutes are its own)."""
    if not row.get("epochs"):
        return "–"
    return f"{row['epochs']}" + (f" (from {row['init_from']})" if row.get("init_from") else "")


def markdown(rows: list[dict[str, Any]], goals: list[dict[str, Any]], mode: str, command: str) -> str:
    quality = [row for row in rows if row.get("protocol") != "speed"]
    speed = [row for row in rows if row.get("protocol") == "speed"]
    n = {row["dataset"]: row["n"] for row in quality if row.get("n")}
    lines = [
        "# Super-resolution benchmark",
        "",
        f"`{command}` ({mode}; {machine()}). Y-PSNR (dB) / Y-SSIM on whole Set5 (n = {n.get('Set5')}) and "
        f"Set14 (n = {n.get('Set14')}) images, 8-bit, BT.601 luma, `scale` border pixels cropped "
        "(BasicSR); LR = antialiased bicubic ↓ (Keys a = −0.5, Matlab's kernel) → 8 bit (→ JPEG q30 where "
        f"said). Paper rows: {PAPER}.",
    ]
    if mode == "quick":
        lines += [
            "",
            "**Quick mode**: trainings of a few hundred samples, Set14 cut to its first images, 2 timed "
            "rounds: the numbers test the pipeline, they are not results.",
        ]
    lines += [
        "",
        "| method | train data | scale | input | Set5 PSNR-Y | Set5 SSIM-Y | Set14 PSNR-Y | Set14 SSIM-Y "
        "| train min | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, int, str, str], dict[str, dict[str, Any]]] = {}
    for row in quality:
        method = row["method"] + (" (paper)" if row.get("source") == "paper" else "")
        key = (method, row["scale"], row.get("degradation", "bicubic"), row.get("train_data", ""))
        groups.setdefault(key, {})[row["dataset"]] = row
    for (method, scale, input_, data), by_set in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        any_row = next(iter(by_set.values()))
        cells = []
        for dataset in TEST_SETS:
            m = by_set.get(dataset, {}).get("metrics", {})
            cells += [fmt(m.get("psnr_y")), fmt(m.get("ssim_y"), 4)]
        lines.append(
            f"| {method} | {data or '–'} | ×{scale} | {input_} | {' | '.join(cells)} | "
            f"{fmt(any_row.get('train_minutes'), 1)} | {epochs(any_row)} |"
        )
    if speed:
        threads = speed[0]["threads"]
        peak = {row["variant"]: row["metrics"]["conv_peak_gflops"] for row in speed}
        lines += [
            "",
            f"## Speed: ×4 to a 1920×1080 output, batch 1, {threads} CPU thread(s), median of interleaved "
            "rounds",
            "",
            "GFLOP counts the convolutions (2·MACs). Conv peak: a 128→128 3×3 conv on 256×256 (the faster "
            f"of NCHW and channels-last) timed in the same rounds ({fmt(peak.get('fp32'), 1)} GFLOP/s fp32, "
            f"{fmt(peak.get('bf16 autocast'), 1)} GFLOP/s bf16); a bf16 path is compared with the bf16 "
            "peak. Δ = Set5 ×4 Y-PSNR of the path minus fp32's.",
            "",
            "| model | variant | fps | × bicubic fps | GFLOP/frame | GFLOP/s | of conv peak | Set5 PSNR-Y "
            "| Δ vs fp32 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in speed:
            m = row["metrics"]
            peak_share = (
                "–" if m["fraction_of_conv_peak"] is None else f"{100 * m['fraction_of_conv_peak']:.0f}%"
            )
            lines.append(
                f"| {row['method']} | {row['variant']} | {fmt(m['fps'])} | "
                f"{fmt(m['fps_ratio_vs_bicubic'], 3)} | {fmt(m['gflop_per_frame'], 1)} | "
                f"{fmt(m['gflops'], 1)} | {peak_share} | "
                f"{fmt(m.get('psnr_y_set5'))} | {fmt(m.get('psnr_y_delta_vs_fp32'), 3)} |"
            )
    lines += ["", "## Targets", "", "| target | value | met |", "|---|---|---|"]
    for goal in goals:
        met = {True: "yes", False: "**no**", None: "not run"}[goal["met"]]
        lines.append(f"| {goal['target']} | {fmt(goal['value'])} | {met} |")
    return "\n".join(lines) + "\n"


def finished_checkpoint(run_dir: Path) -> str | None:
    """The tested checkpoint of a finished earlier run (so ``--only`` can fine-tune from a run it skips)."""
    return read_results(run_dir).get("tested_checkpoint") if reusable(run_dir, reuse=True) else None


# -- main ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode_group = parser.add_mutually_exclusive_group()
    mode_group.add_argument("--full", action="store_true", help="the committed benchmark (full schedules)")
    mode_group.add_argument("--quick", action="store_true", help="tiny trainings (the default)")
    parser.add_argument("--reuse", action="store_true", help="evaluate finished runs instead of rerunning")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated run names (default: all); their rows replace theirs in the previous results, "
        "whose other rows and speed rows are kept",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch / ORT threads (default: all cores)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default: quick 2, full 10)")
    parser.add_argument(
        "--no-speed", action="store_true", help="keep the previous results' speed rows instead of timing"
    )
    parser.add_argument(
        "--no-train", action="store_true", help="never train: a run without finished results is skipped"
    )
    args = parser.parse_args()
    register_resolvers()
    mode = "full" if args.full else "quick"
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    command = "python benchmarks/super_resolution.py" + (" --full" if args.full else " --quick")
    bench_dir = ROOT / "outputs" / "bench" / "super_resolution" / ("" if args.full else "quick")
    suffix = "" if args.full else "_quick"
    only = set(filter(None, args.only.split(",")))
    global MAX_IMAGES
    MAX_IMAGES = None if args.full else 5

    rows: list[dict[str, Any]] = []
    for scale in (3, 4):
        rows += quality_rows("bicubic", BicubicUpsampler(scale), scale, None, {"train_data": "–"})
    say("bicubic evaluated")
    nets: dict[str, nn.Module] = {}
    checkpoints: dict[str, str] = {}
    for run in RUNS:
        if only and run.name not in only:
            continue
        run_dir = bench_dir / run.name
        overrides = ["task=super_resolution", f"experiment={run.experiment}", *run.overrides]
        overrides += [] if args.full else run.quick
        if args.no_train and not reusable(run_dir, args.reuse):
            print(f"SKIPPED {run.name}: it needs training (--no-train)")
            continue
        if run.init_from:
            parent = checkpoints.get(run.init_from) or finished_checkpoint(bench_dir / run.init_from)
            if parent is None:
                print(f"SKIPPED {run.name}: it fine-tunes {run.init_from}, which has not run")
                continue
            overrides.append(f"init_weights={parent}")
        try:
            result = run_experiment(overrides, run_dir, args.reuse, log_file=run_dir.with_suffix(".log"))
        except RuntimeError as error:
            print(f"FAILED {run.name}: {error}")
            continue
        net, cfg = load_net(result["tested_checkpoint"], run_dir / "config_resolved.yaml")
        nets[run.name] = net
        checkpoints[run.name] = result["tested_checkpoint"]
        scale, jpeg = int(cfg.data.scale), cfg.module.get("jpeg_quality_eval")
        extra = {
            "experiment": run.experiment,
            "train_data": "+".join(Path(d).name for d in cfg.data.train_dirs),
            "train_minutes": round(result.get("wall_seconds", result.get("fit_seconds") or 0) / 60, 2),
            "epochs": result.get("epochs"),
            "init_from": run.init_from,
            "checkpoint": result["tested_checkpoint"],
            "command": "python run.py " + " ".join(overrides),
        }
        rows += quality_rows(run.name, net, scale, jpeg, extra)
        if run.name == "espcn_x4":  # the clean-trained ESPCN on the JPEG inputs too (no training)
            rows += quality_rows(run.name, net, scale, 30, extra)
        say(f"evaluated {run.name}")
    for method, dataset, scale, psnr in PUBLISHED:
        rows.append(
            {
                "method": method,
                "dataset": dataset,
                "scale": scale,
                "degradation": "bicubic",
                "metrics": {"psnr_y": psnr},
                "source": "paper",
                "reference": PAPER,
            }
        )
    previous = previous_results(f"super_resolution{suffix}")
    if not (args.no_speed or only):
        speed_nets = {  # an untrained stand-in gets timed but no PSNR (its PSNR would mean nothing)
            "espcn": nets.get("espcn_x4") or espcn(SPEED_SCALE).eval(),
            "espcn_paper": nets.get("espcn_paper_t91_x4") or espcn_paper(SPEED_SCALE).eval(),
        }
        if "espcn_int8_qat_x4" in nets:
            speed_nets["espcn_qat"] = nets["espcn_int8_qat_x4"]
        trained = {"espcn": "espcn_x4" in nets, "espcn_paper": "espcn_paper_t91_x4" in nets}
        with tempfile.TemporaryDirectory() as workdir:
            rows += speed_rows(
                speed_nets, trained, threads, args.rounds or (10 if args.full else 2), Path(workdir)
            )
    elif only:  # a partial run: its rows replace theirs, every other row (speed too) is kept
        rows, command = merge_into_previous(
            f"super_resolution{suffix}", rows, f"{command} --only {args.only}"
        )
    elif previous:  # a quality-only refresh keeps the speed
        rows += [row for row in previous["rows"] if row.get("protocol") == "speed"]
        command += f" --no-speed (speed rows of {previous['date']})"
    if "espcn_x4" in nets:
        for path in side_by_side(nets["espcn_x4"], 4, suffix):
            say(f"figure: {path}")

    goals = targets(rows)
    payload = {
        "name": f"super_resolution{suffix}",
        "command": command,
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "mode": mode,
        "threads": threads,
        "rows": rows,
        "targets": goals,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"super_resolution{suffix}.json", json.dumps(payload, indent=2) + "\n")
    text = markdown(rows, goals, mode, command)
    atomic_write_text(RESULTS / f"super_resolution{suffix}.md", text)
    print(text)


if __name__ == "__main__":
    main()
