"""Super-resolution benchmark: bicubic, the paper's ESPCN on T91, the slide's ESPCN (λ = 0 and λ > 0), and
JPEG de-blocking + ESPCN against ESPCN alone on the same JPEG inputs; Y-PSNR / SSIM on Set5 and Set14; speed.

    python benchmarks/super_resolution.py --full          # trains every experiment (hours on 2 CPU cores)
    python benchmarks/super_resolution.py --full --reuse  # only evaluates runs that already finished
    python benchmarks/super_resolution.py [--quick]       # tiny trainings, same tables (minutes)

Every trained row comes from `python run.py experiment=<experiment> …` into
outputs/bench/super_resolution/<run>/ (quick: outputs/bench/super_resolution/quick/<run>/), bicubic from
`python run.py model=bicubic stage=test data.scale=<r>`; the figures are the task's test metrics of each run
(its `metrics.json`: whole Set5 / Set14 images, mod-cropped to the scale, LR = bicubic ↓ (antialiased,
Keys a = −0.5) → 8 bit (→ JPEG when the run says so), metrics on the 8-bit Y channel with `scale` border
pixels cropped, BasicSR's convention; the net at the run's `trainer.precision`, e.g. EDSR's bf16-mixed).
The clean-trained ESPCN on JPEG inputs is its test step again with `module.jpeg_quality_eval=30`. Quick
mode tests every run again on the first images of each set (its training tested one). Published rows:
bicubic and ESPCN (91 images) from Shi et al., CVPR 2016.

Speed: frames per second for a 1920×1080 OUTPUT at ×4 (LR 480×270, batch 1) on this machine's CPU cores
(`--threads`), each variant timed in interleaved rounds in this process, as a ratio to bicubic, with the
conv GFLOP/s reached as a fraction of the GFLOP/s of a large conv (128→128, 3×3, 256×256) timed in the same
rounds, and the Set5 ×4 Y-PSNR of every reduced-precision path (the test step with that path as the net)
against fp32. Writes benchmarks/results/super_resolution.{md,json} (quick: super_resolution_quick.*) and
side-by-side PNGs (bicubic | ours | ground truth) of a Set5 and a Set14 image.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from harness import (
    CHANNELS_LAST,
    FP32,
    ORT_FP32,
    REFERENCE,
    RESULTS,
    ROOT,
    OnnxNet,
    RunMetrics,
    benchmark_parser,
    conv_gflop,
    conv_peak,
    finished_checkpoint,
    fmt,
    load_net,
    load_run,
    machine,
    markdown_table,
    merge_into_previous,
    precision_variants,
    previous_results,
    reference_conv,
    reusable,
    run_config,
    run_experiment,
    run_metrics,
    say,
    target,
    targets_markdown,
    time_variants,
    write_results,
)
from torch import nn

from datamodules.io import save_image
from datamodules.super_resolution import ListDataset, load_folders
from framework.export import export_net
from framework.paths import shared_data_dir
from framework.resolvers import register_resolvers
from models.espcn import BicubicUpsampler, espcn, espcn_paper
from models.quantization import quantize_int8
from operators.degradation import make_lr, mod_crop

TEST_SETS = ("Set5", "Set14")
FIGURES = (("Set5", "img_003", "butterfly"), ("Set14", "img_014", "zebra"))
SPEED_LR = (270, 480)  # ×4 → 1080×1920
SPEED_SCALE = 4
QUICK_TEST_IMAGES = 5  # quick mode: the first images of each test set (smaller n)


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
JPEG_EVAL = {"espcn_x4": 30}  # a clean-trained run also tested on JPEG inputs of this quality (no training)
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


def degradation(jpeg: int | None) -> str:
    return "bicubic" if jpeg is None else f"bicubic+jpeg{jpeg}"


def quality_rows(
    label: str, result: RunMetrics, scale: int, jpeg: int | None, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per test set of a run's test metrics (4 decimals)."""
    return [
        {
            "method": label,
            "dataset": dataset,
            "scale": scale,
            "degradation": degradation(jpeg),
            "n": result.n.get(dataset),
            "metrics": result.of(dataset, digits=4),
            **extra,
        }
        for dataset in TEST_SETS
    ]


# -- speed -----------------------------------------------------------------------------------------------
def int8_calibration(scale: int) -> list[torch.Tensor]:
    """LR inputs that calibrate int8 ranges after training: the top-left 96×96 of every 12th T91 image."""
    images = load_folders([str(shared_data_dir() / "sr" / "T91")])[::12]
    return [make_lr(mod_crop(im[:, :96, :96], scale).float().div(255).unsqueeze(0), scale) for im in images]


def speed_rows(
    nets: dict[str, nn.Module],
    runs: dict[str, Path],
    threads: int,
    rounds: int,
    workdir: Path,
    limit: int | None,
) -> list[dict[str, Any]]:
    """fps of every variant of ``nets`` ("espcn", "espcn_paper": ×4; optional "espcn_qat", the int8
    quantisation-aware fine-tune of "espcn") for a 1080p output; the Set5 Y-PSNR of each variant of a model
    with a finished run in ``runs`` (its test step, the variant as its net) and its change against fp32."""
    x = torch.rand(1, 3, *SPEED_LR, generator=torch.Generator().manual_seed(0))
    espcn_net, paper_net = nets["espcn"], nets["espcn_paper"]
    espcn_variants = precision_variants(espcn_net, x, workdir, threads, name="espcn")
    calibration = int8_calibration(espcn_net.upscale_factor)
    int8 = quantize_int8(espcn_variants[ORT_FP32].path, workdir / "espcn_int8.onnx", calibration)
    espcn_variants["ONNX Runtime int8 (QDQ)"] = OnnxNet(int8, threads)
    if "espcn_qat" in nets:  # its own int8 ranges, learned in training (the net exports itself as int8)
        qat = export_net(nets["espcn_qat"], workdir / "espcn_qat.onnx", x)
        espcn_variants["ONNX Runtime int8 (QAT)"] = OnnxNet(qat, threads)
    reference = reference_conv()
    paper_variants = precision_variants(
        paper_net, x, workdir, threads, (FP32, CHANNELS_LAST, ORT_FP32), "paper"
    )
    timed = time_variants(
        {
            "bicubic": ({FP32: BicubicUpsampler(SPEED_SCALE)}, x),
            "espcn": (espcn_variants, x),
            "espcn_paper": (paper_variants, x),
            REFERENCE: reference,
        },
        rounds,
    )
    bicubic_seconds = timed[0].seconds
    peak = conv_peak(timed, reference[1])
    say(f"timed; large conv {peak['fp32']:.1f} GFLOP/s fp32, {peak['bf16']:.1f} bf16 ({threads} threads)")
    gflop = {"espcn": conv_gflop(espcn_net, x), "espcn_paper": conv_gflop(paper_net, x), "bicubic": 0.0}
    set5_fp32: dict[str, float] = {}
    rows = []
    for t in timed:
        if t.model == REFERENCE:
            continue
        dtype = "bf16" if "bf16" in t.variant else "fp32"
        metrics: dict[str, float | None] = {
            "fps": round(t.fps, 3),
            "fps_ratio_vs_bicubic": round(bicubic_seconds / t.seconds, 4),
            "gflop_per_frame": round(gflop[t.model], 2),
            "gflops": round(gflop[t.model] * t.fps, 1),
            "fraction_of_conv_peak": round(gflop[t.model] * t.fps / peak[dtype], 3)
            if gflop[t.model]
            else None,
            "conv_peak_gflops": round(peak[dtype], 1),
        }
        if t.model in runs:
            run_dir = runs[t.model]
            set5 = {"data.test_dirs": {"Set5": run_config(run_dir).data.test_dirs.Set5}}
            tested = run_metrics(run_dir, set5, t.net, limit, precision="32-true")  # the variant alone
            psnr = tested.of("Set5", digits=4)["psnr_y"]
            set5_fp32.setdefault(t.model, psnr)  # fp32 is each model's first variant
            metrics["psnr_y_set5"] = psnr
            metrics["psnr_y_delta_vs_fp32"] = round(psnr - set5_fp32[t.model], 4)
        rows.append(
            {
                "method": t.model,
                "variant": t.variant,
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
def side_by_side(run_dir: Path, suffix: str) -> list[Path]:
    """bicubic | ours | ground truth (the task's own visuals), 4 white pixels apart, for one Set5 and one
    Set14 image."""
    module, cfg = load_run(run_dir)
    paths = []
    for dataset, stem, label in FIGURES:
        path = Path(cfg.data.test_dirs[dataset]) / f"{stem}.png"
        if not path.is_file():
            continue
        image = ListDataset(load_folders([str(path)]), int(cfg.data.scale))[0]["target"].unsqueeze(0)
        inputs, target = module.inputs_and_target({"target": image})
        panels = list(module.visuals(inputs, module(inputs).clamp(0, 1), target).values())
        gap = torch.ones(1, 3, image.shape[-2], 4)
        row = torch.cat([panels[0], gap, panels[1], gap, panels[2]], dim=-1)
        path = RESULTS / f"super_resolution{suffix}_{dataset.lower()}_{label}.png"
        save_image(row[0], path)
        paths.append(path)
    return paths


# -- tables ----------------------------------------------------------------------------------------------
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

    found = [
        target(
            "espcn_paper_t91_x3: Set5 ×3 Y-PSNR ≥ 32.55 (paper, 91 images)",
            psnr("espcn_paper_t91_x3", "Set5", 3),
            32.55,
        )
    ]
    # the best model trained on T91 + BSD200 (clean ×4 inputs, by Set5), judged on both test sets
    x4 = [
        row["method"]
        for row in rows
        if row.get("train_data") == "T91+BSD200" and row.get("source") != "paper"
    ]
    best = max(x4, key=lambda method: psnr(method, "Set5", 4) or 0.0, default="espcn_x4")
    found.append(target(f"{best}: Set5 ×4 Y-PSNR ≥ 30.9 (best on T91+BSD200)", psnr(best, "Set5", 4), 30.9))
    found.append(target(f"{best}: Set14 ×4 Y-PSNR ≥ 27.7", psnr(best, "Set14", 4), 27.7))
    # De-blocking + SR against SR alone on the same JPEG-q30 inputs: against the ESPCN as trained (clean
    # inputs: the comparison) and against one trained on the same JPEG inputs (equal-data control)
    baselines = (("espcn_x4", "espcn (clean-trained)"), ("espcn_jpeg_x4", "espcn_jpeg (JPEG-trained)"))
    for baseline, label in baselines:
        for dataset in TEST_SETS:
            ours, base = psnr("deblock_espcn_x4", dataset, 4, 30), psnr(baseline, dataset, 4, 30)
            gain = None if ours is None or base is None else round(ours - base, 3)
            found.append(
                target(f"deblock_espcn − {label}, JPEG-q30 inputs, {dataset} ×4 ≥ 0.3 dB", gain, 0.3)
            )
    speed = [row for row in rows if row.get("protocol") == "speed" and row["method"] == "espcn"]
    if speed:  # the speed target counts a path only if it keeps the fp32 model's PSNR (loses ≤ 0.05 dB)

        def psnr_loss(row: dict[str, Any]) -> float | None:  # dB below the fp32 model (< 0: above it)
            delta = row["metrics"].get("psnr_y_delta_vs_fp32")
            return None if delta is None else round(-delta, 4)

        for row in speed:
            if row["variant"] != "fp32" and psnr_loss(row) is not None:
                found.append(
                    target(
                        f"espcn {row['variant']}: Set5 Y-PSNR ≤ 0.05 dB below fp32",
                        psnr_loss(row),
                        0.05,
                        False,
                    )
                )

        def keeps_psnr(row: dict[str, Any]) -> bool:
            loss = psnr_loss(row)
            return row["variant"] == "fp32" or (loss is not None and loss <= 0.05)

        exact = [row for row in speed if keeps_psnr(row)]
        fastest = max(exact, key=lambda row: row["metrics"]["fps"])
        found.append(
            target(
                f"espcn ×4 1080p ≥ 10 fps within 0.05 dB of fp32 (fastest such path: {fastest['variant']})",
                fastest["metrics"]["fps"],
                10.0,
            )
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
    reduced = sorted({row["method"] for row in quality if row.get("test_precision") not in (None, "32-true")})
    if reduced:  # each run is scored as its own test step scores it
        precisions = sorted({row["test_precision"] for row in quality if row["method"] in reduced})
        lines[-1] += f" Tested at their training's {' / '.join(precisions)}: {', '.join(reduced)}."
    if mode == "quick":
        lines += [
            "",
            "**Quick mode**: trainings of a few hundred samples, Set14 cut to its first images, 2 timed "
            "rounds: the numbers test the pipeline, they are not results.",
        ]
    groups: dict[tuple[str, int, str, str], dict[str, dict[str, Any]]] = {}
    for row in quality:
        method = row["method"] + (" (paper)" if row.get("source") == "paper" else "")
        key = (method, row["scale"], row.get("degradation", "bicubic"), row.get("train_data", ""))
        groups.setdefault(key, {})[row["dataset"]] = row
    table = []
    for (method, scale, input_, data), by_set in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        any_row = next(iter(by_set.values()))
        cells = []
        for dataset in TEST_SETS:
            m = by_set.get(dataset, {}).get("metrics", {})
            cells += [fmt(m.get("psnr_y")), fmt(m.get("ssim_y"), 4)]
        table.append(
            [
                method,
                data or "–",
                f"×{scale}",
                input_,
                *cells,
                fmt(any_row.get("train_minutes"), 1),
                epochs(any_row),
            ]
        )
    header = ["method", "train data", "scale", "input", "Set5 PSNR-Y", "Set5 SSIM-Y", "Set14 PSNR-Y"]
    lines += ["", *markdown_table([*header, "Set14 SSIM-Y", "train min", "epochs"], table)]
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
        ]
        table = []
        for row in speed:
            m = row["metrics"]
            share = m["fraction_of_conv_peak"]
            table.append(
                [
                    row["method"],
                    row["variant"],
                    fmt(m["fps"]),
                    fmt(m["fps_ratio_vs_bicubic"], 3),
                    fmt(m["gflop_per_frame"], 1),
                    fmt(m["gflops"], 1),
                    "–" if share is None else f"{100 * share:.0f}%",
                    fmt(m.get("psnr_y_set5")),
                    fmt(m.get("psnr_y_delta_vs_fp32"), 3),
                ]
            )
        header = ["model", "variant", "fps", "× bicubic fps", "GFLOP/frame", "GFLOP/s", "of conv peak"]
        lines += markdown_table([*header, "Set5 PSNR-Y", "Δ vs fp32"], table)
    lines += ["", "## Targets", "", *targets_markdown(goals)]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------------------
def main() -> None:
    parser = benchmark_parser(
        __doc__,
        only="comma-separated run names (default: all); their rows replace theirs in the previous results, "
        "whose other rows and speed rows are kept",
        rounds="timed rounds (default: quick 2, full 10)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch / ORT threads (default: all cores)")
    parser.add_argument(
        "--no-speed", action="store_true", help="keep the previous results' speed rows instead of timing"
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
    limit = None if args.full else QUICK_TEST_IMAGES  # quick trainings tested one image: test them again

    rows: list[dict[str, Any]] = []
    for scale in (3, 4):
        run_dir = bench_dir / f"bicubic_x{scale}"
        overrides = ["task=super_resolution", "model=bicubic", "stage=test", f"data.scale={scale}"]
        overrides.append(f"data.crop_size={17 * scale}")  # unused by a test, but it must fit the scale
        run_experiment(overrides, run_dir, args.reuse)
        rows += quality_rows(
            "bicubic", run_metrics(run_dir, limit_test_batches=limit), scale, None, {"train_data": "–"}
        )
    say("bicubic evaluated")
    nets: dict[str, nn.Module] = {}
    run_dirs: dict[str, Path] = {}
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
            parent = run_dirs.get(run.init_from, bench_dir / run.init_from)
            checkpoint = finished_checkpoint(parent)
            if checkpoint is None:
                print(f"SKIPPED {run.name}: it fine-tunes {run.init_from}, which has not run")
                continue
            overrides.append(f"init_weights={checkpoint}")
        try:
            result = run_experiment(overrides, run_dir, args.reuse)
        except RuntimeError as error:
            print(f"FAILED {run.name}: {error}")
            continue
        nets[run.name], cfg = load_net(run_dir)
        run_dirs[run.name] = run_dir
        scale, jpeg = int(cfg.data.scale), cfg.module.get("jpeg_quality_eval")
        extra = {
            "experiment": run.experiment,
            "train_data": "+".join(Path(d).name for d in cfg.data.train_dirs),
            "train_minutes": round(result.get("wall_seconds", result.get("fit_seconds") or 0) / 60, 2),
            "epochs": result.get("epochs"),
            "init_from": run.init_from,
            "test_precision": cfg.trainer.get("precision"),
            "checkpoint": result["tested_checkpoint"],
            "command": "python run.py " + " ".join(overrides),
        }
        rows += quality_rows(run.name, run_metrics(run_dir, limit_test_batches=limit), scale, jpeg, extra)
        if run.name in JPEG_EVAL:  # the clean-trained net on JPEG inputs too: its test step, no training
            quality = JPEG_EVAL[run.name]
            tested = run_metrics(run_dir, {"module.jpeg_quality_eval": quality}, limit_test_batches=limit)
            rows += quality_rows(run.name, tested, scale, quality, extra)
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
        trained = {"espcn": "espcn_x4", "espcn_paper": "espcn_paper_t91_x4"}
        speed_runs = {model: run_dirs[name] for model, name in trained.items() if name in run_dirs}
        with tempfile.TemporaryDirectory() as workdir:
            rounds = args.rounds or (10 if args.full else 2)
            rows += speed_rows(speed_nets, speed_runs, threads, rounds, Path(workdir), limit)
    elif only:  # a partial run: its rows replace theirs, every other row (speed too) is kept
        rows, command = merge_into_previous(
            f"super_resolution{suffix}", rows, f"{command} --only {args.only}"
        )
    elif previous:  # a quality-only refresh keeps the speed
        rows += [row for row in previous["rows"] if row.get("protocol") == "speed"]
        command += f" --no-speed (speed rows of {previous['date']})"
    if "espcn_x4" in run_dirs:
        for path in side_by_side(run_dirs["espcn_x4"], suffix):
            say(f"figure: {path}")

    goals = targets(rows)
    write_results(
        f"super_resolution{suffix}",
        command,
        rows,
        markdown(rows, goals, mode, command),
        {"mode": mode, "threads": threads, "targets": goals},
    )


if __name__ == "__main__":
    main()
