"""Style-transfer benchmark: Gatys, the lecture's fast mode, the light feed-forward net and AdaIN on the
content photos of ``shared/data/style/contents`` × paintings, at 512 px (long side).

    python benchmarks/style_transfer.py --full --reuse --no-train   # evaluate finished trainings (~1.5 h)
    python benchmarks/style_transfer.py --full                      # also trains (hours on 2 CPU cores)
    python benchmarks/style_transfer.py                             # quick: tiny trainings, 128 px (minutes)

* **Quality**: every row's style loss and content loss come from ``python run.py … stage=test`` of that method
  and style (the task's metrics: the offline VGG19 to relu3_1, style relu1_1/2_1/3_1 with w_j = 1/(J C_j²),
  content relu3_1, the same for every method), the mean over the 5 photos; ``× content`` is the style loss
  over the content image's own (the ``content`` row, the fast mode with k = 0).
* **Speed**: seconds per 512×512 image (a centre crop of the photo) on ``--threads`` threads, timed in this
  process in interleaved rounds (median), each method as its run's config runs it (bf16 autocast and
  channels-last where the config says so); AdaIN's style is encoded once per style (a fixed style).
* **Gatys against a plain PyTorch L-BFGS loop** written below (same VGG, loss weights, image and L-BFGS
  settings), interleaved: time per step, steps and seconds to a fixed style-loss target, as ratios.
* **The fast mode against k**: style loss (× the content's) and seconds per image for k = 0, 1, 2, 4, 8.
* **Picture**: content | style | Gatys | fast | feed-forward (light) | AdaIN for photos × styles, PNG.

Writes benchmarks/results/style_transfer.{md,json} and style_transfer.png (quick: style_transfer_quick.*).
Timings on this shared machine are noisy: the load average is reported beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from common import RESULTS, ROOT, reusable, run_experiment, write_results

sys.path.insert(0, str(ROOT))
import hydra
from omegaconf import OmegaConf
from torch import Tensor
from torchvision.transforms import v2
from torchvision.utils import make_grid

from algorithms.style_transfer import GatysStyleTransfer
from datamodules.io import load_image, save_image
from framework.checkpoint_io import load_net_weights
from framework.results import read_results
from losses.style import StyleTransferLoss

DATA = ROOT.parent / "shared" / "data" / "style"
STYLES = ("candy", "starry_night")
UNSEEN = ("starry_night", "the_scream", "udnie")  # held out of AdaIN's training (conf/data/style_photos.yaml)
K_VALUES = (0, 1, 2, 4, 8)
GRID_PHOTOS = ("tubingen", "golden_gate")
COLUMNS = ("gatys", "fast", "feedforward_light", "adain")
FAST_SPEED = ["trainer.precision=bf16-mixed", "module.channels_last=true"]  # the fast mode's speed setting
STARTED = time.perf_counter()


def say(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {message}", flush=True)


def load() -> str:
    """The 1 / 5 / 15-minute load averages (other jobs share these cores)."""
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


@dataclass
class Setting:
    full: bool
    size: int  # test photos' long side, and the timed images' side
    quick: list[str]  # overrides that shrink a training run

    @property
    def bench_dir(self) -> Path:
        return ROOT / "outputs" / "bench" / "style_transfer" / ("" if self.full else "quick")


TRAININGS = {
    "feedforward_light_candy": ["experiment=style_feedforward_light_candy"],
    "feedforward_light_starry_night": ["experiment=style_feedforward_light_starry_night"],
    "adain": ["experiment=style_adain"],
}


def train(name: str, setting: Setting, args: argparse.Namespace) -> dict[str, Any] | None:
    """The finished training run ``name`` (trained unless ``--no-train``); None when it is not there."""
    run_dir = setting.bench_dir / name
    if args.no_train and not reusable(run_dir, args.reuse):
        say(f"{name}: no finished run in {run_dir} (--no-train): its rows are left out")
        return None
    say(f"{name}: training (or reusing) in {run_dir}")
    overrides = TRAININGS[name] + ([] if setting.full else setting.quick)
    result = run_experiment(overrides, run_dir, args.reuse, log_file=run_dir.with_suffix(".log"))
    return {**result, "run_dir": run_dir}


def test_run(name: str, overrides: list[str], setting: Setting, args: argparse.Namespace) -> dict[str, Any]:
    """``python run.py <overrides> stage=test`` on the test photos at ``setting.size`` px."""
    run_dir = setting.bench_dir / "test" / name
    size = [f"data.test_size={setting.size}"] + (
        [] if setting.full else ["model.steps=[10,5,3]"] * ("model=gatys" in overrides)
    )
    result = run_experiment(
        [*overrides, "stage=test", *size], run_dir, args.reuse, run_dir.with_suffix(".log")
    )
    return {**result, "run_dir": run_dir}


# -- timing -------------------------------------------------------------------------------------------------
def read_config(run_dir: Path) -> Any:
    return OmegaConf.load(run_dir / "config_resolved.yaml")


def build(run_dir: Path) -> tuple[torch.nn.Module, bool]:
    """The LightningModule of a run, as its config builds it, with its tested net weights; and whether the run
    uses bf16 autocast."""
    cfg = read_config(run_dir)
    module = hydra.utils.instantiate(cfg.module)
    checkpoint = read_results(run_dir).get("tested_checkpoint")
    if checkpoint:
        load_net_weights(module.net, checkpoint, key="tested_checkpoint")
    return module.eval(), str(cfg.trainer.precision).startswith("bf16")


def photo(name: str, size: int) -> Tensor:
    """The content photo ``name``, short side resized to ``size`` and centre-cropped to size × size."""
    image = load_image(next(DATA.glob(f"contents/{name}.*")), "RGB")
    square = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    return square(image)[None].contiguous()


def stylise(module: torch.nn.Module, content: Tensor, bf16: bool) -> Tensor:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return module(content).float()


# -- Gatys against a plain PyTorch L-BFGS loop ------------------------------------------------------------
def plain_lbfgs(loss: StyleTransferLoss, content: Tensor, style: Tensor, steps: int) -> list[float]:
    """Gatys et al. written out: L-BFGS (lr 1, history 50, one evaluation per step) on the pixels from the
    content image, projected onto [0, 1] after each step; Gram matrices and the weighted sums by hand on
    ``loss.vgg``. Returns the style loss before each step."""
    vgg, weights = loss.vgg, loss.style_layer_weights

    def grams(features: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for name in weights:
            b, c, h, w = features[name].shape
            flat = features[name].reshape(b, c, h * w)
            out[name] = flat @ flat.transpose(1, 2) / (h * w)
        return out

    with torch.no_grad():
        targets = vgg(content)
        style_grams = grams(vgg(style))
    image = content.clone(memory_format=torch.contiguous_format).requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=1, history_size=50)
    curve: list[float] = []

    def closure() -> Tensor:
        optimizer.zero_grad()
        features = vgg(image)
        content_term = sum(F.mse_loss(features[n], targets[n]) for n in loss.content_layers)
        image_grams = grams(features)
        style_term = sum(w * (image_grams[n] - style_grams[n]).square().sum() for n, w in weights.items())
        total = loss.content_weight * content_term + loss.style_weight * style_term
        total.backward()
        curve.append(style_term.item())
        return total

    for _ in range(steps):
        optimizer.step(closure)
        with torch.no_grad():
            image.clamp_(0, 1)
    return curve


def gatys_against_plain(
    loss: StyleTransferLoss, content: Tensor, style: Tensor, steps: int, rounds: int
) -> dict[str, Any]:
    """Seconds per step of ours and the plain loop, interleaved over ``rounds``, and the steps and seconds
    each takes to a fixed style-loss target (0.5 × the content's style loss)."""
    ours = GatysStyleTransfer(loss, steps=steps)
    curves: dict[str, list[float]] = {}
    step_times: dict[str, list[float]] = {"ours": [], "plain": []}
    for _ in range(rounds):
        for name in ("ours", "plain"):
            started = time.perf_counter()
            if name == "ours":
                with torch.inference_mode():  # as Lightning's test loop runs it
                    ours(content, style)
                curves[name] = [record["style"] for record in ours.last_history]
            else:
                curves[name] = plain_lbfgs(loss, content, style, steps)
            step_times[name].append((time.perf_counter() - started) / steps)
    start_value = curves["plain"][0]
    target = 0.5 * start_value

    def steps_to(curve: list[float]) -> int | None:
        return next((i for i, value in enumerate(curve) if value <= target), None)  # loss before step i

    per_step = {name: statistics.median(values) for name, values in step_times.items()}
    reached = {name: steps_to(curve) for name, curve in curves.items()}
    seconds = {name: None if reached[name] is None else reached[name] * per_step[name] for name in curves}
    difference = max(
        abs(a - b) / max(abs(b), 1e-12) for a, b in zip(curves["ours"], curves["plain"], strict=True)
    )
    return {
        "size": list(content.shape[-2:]),
        "steps": steps,
        "rounds": rounds,
        "target_style_loss": target,
        "content_style_loss": start_value,
        "seconds_per_step": per_step,
        "step_time_ratio": per_step["ours"] / per_step["plain"],
        "steps_to_target": reached,
        "seconds_to_target": seconds,
        "time_to_target_ratio": seconds["ours"] / seconds["plain"]
        if seconds["ours"] and seconds["plain"]
        else None,
        "max_curve_difference": difference,
    }


# -- tables --------------------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def timed_outputs(
    modules: dict[str, tuple[torch.nn.Module, bool]], content: Tensor, rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, Tensor]]:
    """Wall and CPU seconds (all threads) per call of each module over ``rounds`` interleaved rounds, and each
    one's output. A method
    slower than 10 s per call (Gatys) runs once, without a warm-up; the others get one warm-up call first
    (which also encodes a fixed style once)."""
    times: dict[str, list[float]] = {name: [] for name in modules}
    cpu_times: dict[str, list[float]] = {}
    outputs: dict[str, Tensor] = {}
    for round_ in range(rounds + 1):
        for name, (module, bf16) in modules.items():
            if round_ > 0 and times[name] and times[name][-1] > 10:
                continue
            started, cpu = time.perf_counter(), time.process_time()
            outputs[name] = stylise(module, content, bf16)
            elapsed = time.perf_counter() - started
            if round_ > 0 or elapsed > 10:
                times[name].append(elapsed)
                cpu_times.setdefault(name, []).append(time.process_time() - cpu)
    return times, cpu_times, outputs


def trainable_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.net.parameters() if p.requires_grad)


def verdict(quality_ok: bool, wall: float, cpu: float, limit: float, threads: int) -> str:
    """``met`` when the quality and the wall time (as measured) meet the target; the CPU time (all threads)
    says whether the cores this process got would meet it if it had them to itself (≤ threads × limit)."""
    if not quality_ok:
        return "not met"
    if wall <= limit:
        return "met"
    if cpu <= threads * limit:
        return f"not met in wall time; its CPU time ({cpu:.2f} s) is within {threads} × {limit:g} s"
    return "not met"


def targets_table(
    rows: list[dict[str, Any]], versus: dict[str, Any], threads: int
) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for each target of the issue."""

    def row(method: str, style: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["method"] == method and r["style"] == style), None)

    checks: list[tuple[str, str, str]] = []
    ratio = versus["step_time_ratio"]
    checks.append(
        (
            "gatys: time per step ≤ 1.05 × the plain L-BFGS loop's",
            f"{ratio:.3f} ×",
            "met" if ratio <= 1.05 else "not met",
        )
    )
    for style in STYLES:
        fast, gatys = row("fast", style), row("gatys", style)
        if fast:
            wall, cpu = fast["seconds_per_image"], fast["cpu_seconds_per_image"]
            factor = fast["metrics"]["style_loss_x_content"]
            checks.append(
                (
                    f"fast ({style}): ≤ 2 s per 512 px image, style loss ≤ 0.5 × the content's",
                    f"{wall:.2f} s (CPU {cpu:.2f} s), {factor:.2f} ×",
                    verdict(factor <= 0.5, wall, cpu, 2.0, threads),
                )
            )
        for method, rate, bound, unseen_only in (("feedforward_light", 4, 2, False), ("adain", 2, 3, True)):
            net = row(method, style)
            if not net or not gatys or (unseen_only and style not in UNSEEN):
                continue
            factor = net["metrics"]["style_loss"] / gatys["metrics"]["style_loss"]
            wall, cpu = net["seconds_per_image"], net["cpu_seconds_per_image"]
            checks.append(
                (
                    f"{method} ({style}{', unseen' if unseen_only else ''}): ≥ {rate} images/s at 512², "
                    f"style loss ≤ {bound} × gatys'",
                    f"{1 / wall:.2f} images/s (CPU {cpu:.2f} s / image), {factor:.2f} ×",
                    verdict(factor <= bound, wall, cpu, 1 / rate, threads),
                )
            )
    return checks


def markdown(
    rows: list[dict[str, Any]],
    versus: dict[str, Any],
    k_rows: list[dict[str, Any]],
    checks: list[tuple[str, str, str]],
    loads: dict[str, str],
    setting: Setting,
    threads: int,
) -> str:
    size = setting.size
    lines = [
        "# Style transfer",
        "",
        f"Test photos: `style/contents` (5), long side {size} px; styles at 512 px long side. Metrics: the "
        "offline VGG19 to relu3_1 for every method (style relu1_1/2_1/3_1, w_j = 1/(J C_j²); content "
        "relu3_1), mean per photo; `× content` = style loss / the content photo's own. Seconds per "
        f"{size}×{size} image on {threads} threads, median of interleaved rounds (CPU s: all threads' CPU "
        "time, what the cores this process got spent on it); load average (1/5/15 min) "
        f"{loads['start']} at the start, {loads['end']} at the end (other jobs shared the 2 cores).",
        "",
        "| method | style | n | style loss | × content | content loss | s / image | CPU s / image "
        "| images / s | trainable params | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        m = row["metrics"]
        seen = "" if row["method"] != "adain" else (" (unseen)" if row["style"] in UNSEEN else " (seen)")
        cells = [
            row["method"],
            row["style"] + seen,
            fmt(row["n"]),
            fmt(m["style_loss"]),
            fmt(m["style_loss_x_content"], 3),
            fmt(m["content_loss"]),
            fmt(row.get("seconds_per_image"), 3),
            fmt(row.get("cpu_seconds_per_image"), 3),
            fmt(row.get("images_per_second"), 3),
            fmt(row.get("params")),
            fmt(row.get("train_minutes"), 3),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    v = versus
    lines += [
        "",
        f"Gatys against a plain PyTorch L-BFGS loop (benchmarks/style_transfer.py: same VGG, weights, image "
        f"{v['size'][0]}×{v['size'][1]} × starry_night, L-BFGS lr 1 / history 50 / one evaluation per step, "
        f"[0, 1] projection), {v['steps']} steps × {v['rounds']} interleaved rounds; target style loss "
        f"{v['target_style_loss']:.4g} (0.5 × the content's {v['content_style_loss']:.4g}):",
        "",
        "| | s / step | steps to target | s to target |",
        "|---|---|---|---|",
        f"| ours (`algorithms.style_transfer.gatys`) | {v['seconds_per_step']['ours']:.3f} | "
        f"{fmt(v['steps_to_target']['ours'])} | {fmt(v['seconds_to_target']['ours'], 3)} |",
        f"| plain loop | {v['seconds_per_step']['plain']:.3f} | {fmt(v['steps_to_target']['plain'])} | "
        f"{fmt(v['seconds_to_target']['plain'], 3)} |",
        f"| ratio ours / plain | {v['step_time_ratio']:.3f} | | {fmt(v['time_to_target_ratio'], 3)} |",
        "",
        f"(largest relative difference between the two style-loss curves: {v['max_curve_difference']:.1e})",
        "",
        "The fast mode against k (η = 0.02):",
        "",
        "| k | " + " | ".join(f"× content ({style})" for style in STYLES) + " | s / image |",
        "|---|" + "---|" * (len(STYLES) + 1),
    ]
    for row in k_rows:
        factors = " | ".join(fmt(row["x_content"].get(style), 3) for style in STYLES)
        lines.append(f"| {row['k']} | {factors} | {fmt(row['seconds_per_image'], 3)} |")
    lines += ["", "Targets (issue 16):", "", "| target | measured | verdict |", "|---|---|---|"]
    for target, measured, outcome in checks:
        lines.append(f"| {target} | {measured} | {outcome} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="512 px, the committed result")
    parser.add_argument("--reuse", action="store_true", help="evaluate runs that already finished")
    parser.add_argument(
        "--no-train", action="store_true", help="never train: rows of missing runs are left out"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per method")
    parser.add_argument(
        "--runs-only", action="store_true", help="only the stage=test runs (e.g. while a training goes on)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = 512 if args.full else 128
    quick = [
        "trainer.max_epochs=1",
        "data.samples_per_epoch=16",
        "data.val_size=64",
        "trainer.limit_val_batches=1",
        f"data.test_size={size}",
    ]
    setting = Setting(args.full, size, quick)
    loads = {"start": load()}
    say(f"load average at start: {loads['start']}")
    trained = {name: train(name, setting, args) for name in TRAININGS}

    # quality: one stage=test run per method and style
    rows: list[dict[str, Any]] = []
    run_dirs: dict[tuple[str, str], Path] = {}
    for style in STYLES:
        task = ["task=style_transfer", f"style={style}"]
        runs: dict[str, dict[str, Any]] = {}
        for k in K_VALUES:
            name = {0: "content", 2: "fast"}.get(k, f"fast_k{k}")
            fast = [*task, "model=fast", f"model.k={k}", *FAST_SPEED]
            runs[name] = test_run(f"{name}_{style}", fast, setting, args)
        runs["gatys"] = test_run(f"gatys_{style}", [*task, "model=gatys"], setting, args)
        feedforward = trained.get(f"feedforward_light_{style}")
        if feedforward:
            runs["feedforward_light"] = feedforward
        if trained.get("adain"):
            best = trained["adain"]["tested_checkpoint"]
            overrides = ["experiment=style_adain", f"ckpt_path={best}", f"style={style}"]
            runs["adain"] = test_run(f"adain_{style}", overrides, setting, args)
        reference = runs["content"]["metrics"]["test/style_loss"]
        for method, result in runs.items():
            run_dirs[(method, style)] = result["run_dir"]
            metrics = result["metrics"]
            training = trained.get(f"feedforward_light_{style}" if method == "feedforward_light" else method)
            rows.append(
                {
                    "method": method,
                    "precision": read_config(result["run_dir"]).trainer.precision,
                    "dataset": f"style/contents × {style}",
                    "style": style,
                    "n": result.get("n_test"),
                    "metrics": {
                        "style_loss": metrics["test/style_loss"],
                        "content_loss": metrics["test/content_loss"],
                        "style_loss_x_content": metrics["test/style_loss"] / reference,
                    },
                    "train_minutes": (training["fit_seconds"] or 0) / 60 if training else None,
                    "checkpoint": result.get("tested_checkpoint"),
                }
            )

    if args.runs_only:
        say("--runs-only: the stage=test runs are done")
        return

    # speed and the picture: each method on 512×512 crops of the grid photos
    say(f"timing on {size}×{size} crops, load {load()}")
    picture: list[Tensor] = []
    seconds: dict[tuple[str, str], list[float]] = {}
    cpu_seconds: dict[tuple[str, str], list[float]] = {}
    params: dict[str, int] = {}
    for style in STYLES:
        modules = {}
        for method in ("content", *[f"fast_k{k}" for k in K_VALUES if k not in (0, 2)], *COLUMNS):
            if (method, style) in run_dirs:
                modules[method] = build(run_dirs[(method, style)])
                params[method] = trainable_parameters(modules[method][0])
        for photo_name in GRID_PHOTOS:
            content = photo(photo_name, size)
            times, cpu_times, outputs = timed_outputs(modules, content, args.rounds)
            for method, values in times.items():
                seconds.setdefault((method, style), []).extend(values)
                cpu_seconds.setdefault((method, style), []).extend(cpu_times[method])
            style_image = modules["content"][0].style_image
            style_tile = F.interpolate(style_image, size=(size, size), mode="bilinear", antialias=True)
            blank = torch.ones_like(content)
            picture += [content, style_tile, *(outputs.get(m, blank) for m in COLUMNS)]
            say(
                f"{photo_name} × {style}: "
                + ", ".join(f"{m} {statistics.median(t):.2f} s" for m, t in times.items())
            )
    for row in rows:
        key = (row["method"], row["style"])
        if key in seconds:
            row["seconds_per_image"] = statistics.median(seconds[key])
            row["images_per_second"] = 1 / row["seconds_per_image"]
            row["cpu_seconds_per_image"] = statistics.median(cpu_seconds[key])
            row["params"] = params.get(row["method"])
    k_rows = []
    for k in K_VALUES:
        name = {0: "content", 2: "fast"}.get(k, f"fast_k{k}")
        chosen = [r for r in rows if r["method"] == name]
        k_rows.append(
            {
                "k": k,
                "x_content": {r["style"]: r["metrics"]["style_loss_x_content"] for r in chosen},
                "seconds_per_image": statistics.median([r["seconds_per_image"] for r in chosen]),
            }
        )

    # Gatys against the plain loop, interleaved, on the first grid photo × starry_night
    gatys_module, _ = build(run_dirs[("gatys", "starry_night")])
    say(f"Gatys against a plain L-BFGS loop, load {load()}")
    versus = gatys_against_plain(
        gatys_module.net.loss, photo(GRID_PHOTOS[0], size), gatys_module.style_image,
        steps=15 if args.full else 5, rounds=2,
    )  # fmt: skip
    loads["end"] = load()
    checks = targets_table(rows, versus, args.threads)

    name = "style_transfer" if args.full else "style_transfer_quick"
    grid = make_grid(torch.cat(picture), nrow=2 + len(COLUMNS), padding=4, pad_value=1.0)
    save_image(grid, RESULTS / f"{name}.png")
    command = "python benchmarks/style_transfer.py" + " --full" * args.full
    text = markdown(rows, versus, k_rows, checks, loads, setting, args.threads)
    text += f"\n![content | style | gatys | fast | feedforward_light | adain]({name}.png)\n"
    rows_out = [
        *rows,
        {
            "method": "gatys_vs_plain_lbfgs",
            "dataset": f"{GRID_PHOTOS[0]} × starry_night",
            "metrics": {"step_time_ratio": versus["step_time_ratio"]},
            **versus,
        },
    ]
    rows_out += [
        {
            "method": f"fast_k{r['k']}_timing",
            "dataset": "style/contents",
            "metrics": r["x_content"],
            "seconds_per_image": r["seconds_per_image"],
        }
        for r in k_rows
    ]
    rows_out += [
        {"method": "target", "dataset": t, "metrics": {}, "measured": m, "met": met} for t, m, met in checks
    ]
    write_results(name, command, rows_out, text)


if __name__ == "__main__":
    main()
