"""Portrait segmentation benchmark: PSPNet-MobileNetV2 with the NLL, the soft Jaccard and NLL + w·soft Jaccard
(a few w), PSPNet-ResNet18 and a U-Net baseline, against MediaPipe Selfie Segmentation on the same images;
IoU on our EG1800 test split and on human_seg; CPU speed; published figures beside ours.

    python benchmarks/portrait_segmentation.py --full          # trains every run (hours on 2 CPU cores)
    python benchmarks/portrait_segmentation.py --full --reuse  # evaluates runs that already finished
    python benchmarks/portrait_segmentation.py [--quick]       # tiny trainings, same tables (minutes)

Quality: every trained row comes from `python run.py experiment=<experiment> …` into
outputs/bench/portrait_segmentation/<run>/ (quick: …/quick/<run>/) and is that run's own test step (its
`metrics.json`): the checkpoint with the best validation IoU, the net run at a short side of 224 px, logits
upsampled (bilinear) to the mask's own size, IoU at threshold 0.5 per image (mean: "iou") and over the test
set ("iou_dataset"), boundary F (DAVIS, 0.8 % of the diagonal). EG1800 test: 100 images of our split
(datamodules/splits/eg1800_faces.json, not the authors' test list); human_seg: 290 photos of people never
trained on, each at its own size.

Peer: MediaPipe Selfie Segmentation (the general model that the mediapipe 0.10.14 wheel ships; 256×256
input, mask resized to the image by MediaPipe) on the very pixels our test step scores, in its own
environment (`--mediapipe-python`, default .venv-mediapipe/bin/python; see benchmarks/mediapipe_selfie.py),
scored by the same metric functions at the same resolution; its ms per image is its own `process` call.

Speed (this machine's CPU, `--threads`, default 2; `uptime` load printed in the table): ms per 512×512
image of each net, PyTorch fp32 and ONNX Runtime fp32 timed in the same interleaved rounds (median);
images/s at 256×256 of the net alone, and of the predict path (`stage=predict`'s Trainer.predict on a folder
of 256×256 photos: read, resize, net, upsample, mask + cut-out + portrait mode, three PNG writes), as the
marginal rate between a short and a long folder; and ms per EG1800 test photo (300×400) of our best light
model's inference beside MediaPipe's. Writes benchmarks/results/portrait_segmentation.{md,json} (quick:
portrait_segmentation_quick.*) and two figures: test photos with ours and MediaPipe's masks, and what
`stage=predict` writes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from common import ROOT, machine, run_experiment, write_results
from omegaconf import OmegaConf
from torch import nn

from callbacks.image_logger import image_grid
from datamodules.io import save_image
from framework.resolvers import register_resolvers
from framework.results import read_results
from framework.runner import build
from metrics.segmentation import DatasetIoU, segmentation_metrics
from operators.portrait_mode import blur_background, cutout, overlay


@dataclass
class Run:
    """One training run: ``python run.py experiment=… overrides`` (quick: :data:`QUICK` added)."""

    name: str
    experiment: str
    overrides: list[str] = field(default_factory=list)
    init_from: str | None = None  # the run whose tested checkpoint it continues (init_weights=)


QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=4",
    "data.val_size=8",
    "data.test_size=8",
    "callbacks.image_logger=null",
]
RUNS = [
    Run("pspnet_mnv2_nll_jaccard_w1", "seg_jaccard_sweep", ["loss.jaccard_weight=1"]),
    Run("pspnet_mnv2_os8_best", "seg_best", init_from="pspnet_mnv2_nll_jaccard_w1"),
    Run("pspnet_mnv2_nll", "seg_nll"),
    Run("pspnet_mnv2_soft_jaccard", "seg_soft_jaccard"),
    Run("unet_nll_jaccard_w1", "seg_unet"),
    Run("pspnet_mnv2_nll_jaccard_w0.5", "seg_jaccard_sweep", ["loss.jaccard_weight=0.5"]),
    Run("pspnet_mnv2_nll_jaccard_w2", "seg_jaccard_sweep", ["loss.jaccard_weight=2"]),
    Run("pspnet_resnet18_nll_jaccard_w1", "seg_resnet18"),
]
TEST_SETS = {"eg1800": "EG1800 test (ours)", "human_seg": "human_seg"}
METRICS = ("iou", "iou_dataset", "boundary_f")
SPEED_SIZE, FPS_SIZE = 512, 256
PREDICT_SHORT, PREDICT_LONG = 8, 56  # folder sizes of the predict-path timing (the rate is their difference)
FIGURE_IMAGES = 6
# Published figures, beside ours (their test images are not ours: see the table's note).
PUBLISHED = [
    {
        "method": "PortraitNet (MobileNetV2 U-shape, 224×224)",
        "dataset": "EG1800 test (authors' 289 images)",
        "metrics": {"iou": 0.966},
        "params": 2.1e6,
        "reference": "Zhang et al., PortraitNet, Computers & Graphics 82, 2019 (mIoU 96.6; PaddleSeg's "
        "re-implementation reports 96.92)",
    },
    {
        "method": "SINet (86.9 K parameters)",
        "dataset": "EG1800 test (authors' split)",
        "metrics": {"iou": 0.952},
        "params": 86.9e3,
        "reference": "Park et al., SINet, WACV 2020 (mIoU 95.2; authors' README: IoU 95.2, 0.087 M params)",
    },
    {
        "method": "PSPNet (ResNet-101, COCO pre-training)",
        "dataset": "PASCAL VOC 2012 test (21 classes: for scale only)",
        "metrics": {"iou": 0.854},
        "reference": "Zhao et al., Pyramid Scene Parsing Network, CVPR 2017 (abstract: 85.4 % mIoU)",
    },
]


# -- small helpers -------------------------------------------------------------------------------------------
def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_avg() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def target(name: str, value: float | None, goal: float | None, met: bool | None = None) -> dict[str, Any]:
    if met is None and value is not None and goal is not None:
        met = value >= goal
    return {"target": name, "value": value, "goal": goal, "met": met}


def load_module(run_dir: Path) -> tuple[nn.Module, Any]:
    """The run's LightningModule (its inference: resize, net, upsample) with the tested checkpoint, in eval
    mode, and the run's config."""
    cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ResNet's from-scratch warning: the checkpoint has its weights
        module = hydra.utils.instantiate(cfg.module)
    checkpoint = torch.load(read_results(run_dir)["tested_checkpoint"], map_location="cpu", weights_only=True)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval(), cfg


def best_val_iou(checkpoint: str) -> float | None:
    """The validation IoU that chose the checkpoint (ModelCheckpoint's best score)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True).get("callbacks", {})
    scores = [v.get("best_model_score") for k, v in state.items() if k.startswith("ModelCheckpoint")]
    return float(scores[0]) if scores and scores[0] is not None else None


def test_sets(cfg: Any, size: int | None) -> dict[str, list[dict[str, Any]]]:
    """The run's test sets, item by item as its test step sees them (image, mask, name)."""
    data_cfg = OmegaConf.merge(cfg.data, {"test_size": size, "augmentation": None})
    datamodule = hydra.utils.instantiate(data_cfg)
    datamodule.setup("test")
    return {
        name: list(dataset)
        for name, dataset in zip(datamodule.test_set_names, datamodule.test_set, strict=True)
    }


# -- quality of a trained run: its own test step -------------------------------------------------------------
def describe(cfg: Any) -> dict[str, Any]:
    loss = cfg.module.loss
    parts = []
    if loss.nll_weight:
        parts.append("NLL" if loss.nll_weight == 1 else f"{loss.nll_weight:g}·NLL")
    if loss.jaccard_weight:
        name = "soft Jaccard" if loss.surrogate == "soft_jaccard" else "Lovász"
        parts.append(
            name if loss.jaccard_weight == 1 and not loss.nll_weight else f"{loss.jaccard_weight:g}·{name}"
        )
    net = cfg.module.net
    backbone = net._target_.rsplit(".", 1)[1]
    weights = net.get("weights")
    init = (
        "ImageNet (TFLite)"
        if "mobilenet" in backbone
        else ("from scratch" if weights in (None, "imagenet") else "ImageNet")
    )
    if backbone == "unet_small":
        init = "from scratch"
    return {
        "loss": " + ".join(parts),
        "backbone": backbone,
        "init": init,
        "output_stride": net.get("output_stride"),
    }


def quality_rows(
    run: Run,
    run_dir: Path,
    result: dict[str, Any],
    n: dict[str, int],
    val_iou: float | None = None,
    train_minutes: float | None = None,
    epochs: int | None = None,
) -> list[dict[str, Any]]:
    """Rows of a run's test metrics, one per test set. ``val_iou`` / ``train_minutes`` default to the
    checkpoint's selection score and the run's own fit time."""
    cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
    checkpoint = result["tested_checkpoint"]
    if val_iou is None:
        val_iou = best_val_iou(checkpoint)
    if train_minutes is None:
        train_minutes = round((result.get("fit_seconds") or 0) / 60, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = sum(p.numel() for p in hydra.utils.instantiate(cfg.module.net).parameters())
    info = describe(cfg)
    rows = []
    for name, label in TEST_SETS.items():
        metrics = {m: result["metrics"].get(f"test/{name}/{m}") for m in METRICS}
        if metrics["iou"] is None:
            continue
        rows.append(
            {
                "method": run.name,
                "dataset": label,
                "n": n.get(name),
                "metrics": metrics,
                **info,
                "params": params,
                "val_iou": val_iou,
                "train_minutes": train_minutes,
                "epochs": result.get("epochs") if epochs is None else epochs,
                "image_size": cfg.module.image_size,
                "inference_size": cfg.module.inference_size,
                "flip_average": cfg.module.get("flip_average", False),
                "checkpoint": checkpoint,
                "init_from": run.init_from,
                "command": "python run.py "
                + " ".join([f"experiment={run.experiment}", *run.overrides])
                + (f" init_weights=<{run.init_from} best checkpoint>" if run.init_from else ""),
            }
        )
    return rows


INFERENCE_SIZES = (224, 256, 300, 352)


def tune_inference(run_dir: Path) -> tuple[int, bool, float, dict[str, float]]:
    """The inference size (short side) and mirror averaging that give the run's checkpoint the best IoU on
    the **validation** images (never the test images): (size, flip, its val IoU, every candidate's)."""
    module, cfg = load_module(run_dir)
    datamodule = hydra.utils.instantiate(OmegaConf.merge(cfg.data, {"augmentation": None}))
    datamodule.setup("fit")
    items = list(datamodule.val_set)
    scores = {}
    with torch.inference_mode():
        for size in INFERENCE_SIZES:
            for flip in (False, True):
                module.inference_size, module.flip_average = size, flip
                ious = [
                    segmentation_metrics(torch.sigmoid(module(it["input"][None])), it["target"][None, None])[
                        "iou"
                    ]
                    for it in items
                ]
                scores[f"{size}{' + flip' if flip else ''}"] = torch.cat(ious).mean().item()
    best = max(scores, key=scores.get)
    return int(best.split()[0]), "flip" in best, scores[best], scores


# -- the peer: MediaPipe Selfie Segmentation on the same pixels ----------------------------------------------
def mediapipe_rows(
    sets: dict[str, list[dict[str, Any]]], python: Path, workdir: Path
) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor], float | None]:
    """MediaPipe's rows, its probabilities of the first EG1800 images (for the figure), its median ms."""
    if not python.is_file():
        note = f"not run: {python} does not exist (see benchmarks/mediapipe_selfie.py for its install)"
        return (
            [{"method": "mediapipe_selfie", "dataset": TEST_SETS["eg1800"], "metrics": {}, "note": note}],
            {},
            None,
        )
    rows, figure, ms = [], {}, None
    for name, items in sets.items():
        source, out = workdir / f"mp_in_{name}", workdir / f"mp_out_{name}"
        source.mkdir(parents=True, exist_ok=True)
        for item in items:
            pixels = (item["input"] * 255).round().byte().permute(1, 2, 0).numpy()
            np.save(source / f"{item['name']}.npy", pixels)
        command = [str(python), str(ROOT / "benchmarks" / "mediapipe_selfie.py"), str(source), str(out)]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "GLOG_minloglevel": "2"}
        )
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
            note = f"not run: mediapipe_selfie.py failed ({done.returncode}): {tail[0]}"
            rows.append(
                {"method": "mediapipe_selfie", "dataset": TEST_SETS[name], "metrics": {}, "note": note}
            )
            continue
        timings = json.loads((out / "timings.json").read_text())
        per_image: dict[str, list[torch.Tensor]] = {"iou": [], "boundary_f": []}
        dataset_iou = DatasetIoU()
        for index, item in enumerate(items):
            probs = torch.from_numpy(np.load(out / f"{item['name']}.npy")).clamp(0, 1)[None, None]
            target = item["target"][None, None].float()
            for key, value in segmentation_metrics(probs, target).items():
                per_image[key].append(value)
            dataset_iou.update(probs, target)
            if name == "eg1800" and index < FIGURE_IMAGES:
                figure[item["name"]] = probs[0]
        median_ms = statistics.median(timings["ms"].values())
        if name == "eg1800":
            ms = median_ms
        rows.append(
            {
                "method": "mediapipe_selfie",
                "dataset": TEST_SETS[name],
                "n": len(items),
                "metrics": {
                    "iou": torch.cat(per_image["iou"]).mean().item(),
                    "iou_dataset": dataset_iou.compute().item(),
                    "boundary_f": torch.cat(per_image["boundary_f"]).mean().item(),
                },
                "backbone": "MediaPipe selfie_segmentation.tflite (model_selection 0, mediapipe "
                f"{timings['mediapipe']})",
                "init": "Google's trained model",
                "ms_per_image": round(median_ms, 2),
                "note": "same pixels, metric functions and resolution as our test step",
            }
        )
    return rows, figure, ms


# -- speed ---------------------------------------------------------------------------------------------------
def export_onnx(net: nn.Module, path: Path) -> Path:
    """``net`` to ONNX with dynamic batch / height / width. The dims need a minimum (32 here): without one
    torch.export specialises on size-1 feature maps and fails on PSPNet (framework/export.py's call has
    none yet)."""
    dims = {
        0: torch.export.Dim("batch", min=1),
        2: torch.export.Dim("h", min=32),
        3: torch.export.Dim("w", min=32),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            (torch.rand(1, 3, 64, 64),),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_shapes={next(iter(_forward_args(net))): dims},
            dynamo=True,
            external_data=False,
        )
    return path


def _forward_args(net: nn.Module) -> list[str]:
    import inspect

    return list(inspect.signature(net.forward).parameters)


class OrtNet(nn.Module):
    """An ONNX Runtime session as a module: float32 tensor in, tensor out."""

    def __init__(self, path: Path, threads: int) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"image": x.numpy()})[0])


def time_interleaved(variants: dict[str, nn.Module], x: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median ms of one call per variant, every variant once per round (a load change hits them alike)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for variant in variants.values():
            variant(x)  # warm-up
        for _ in range(rounds):
            for name, variant in variants.items():
                started = time.perf_counter()
                variant(x)
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def speed_rows(
    nets: dict[str, nn.Module], thread_counts: list[int], rounds: int, workdir: Path
) -> list[dict[str, Any]]:
    """ms per 512×512 image and images/s at 256×256 of every net, torch fp32 and ONNX Runtime fp32, each
    thread count in its own interleaved rounds."""
    rows = []
    paths, checks = {}, {}
    x_check = torch.rand(1, 3, 97, 75)
    for name, net in nets.items():
        paths[name] = export_onnx(net, workdir / f"{name}.onnx")
        with torch.inference_mode():
            diff = OrtNet(paths[name], 1)(x_check) - net(x_check)
        checks[name] = diff.abs().max().item()
    for threads in thread_counts:
        torch.set_num_threads(threads)
        variants: dict[str, nn.Module] = {}
        for name, net in nets.items():
            variants[f"{name}|torch fp32"] = net
            variants[f"{name}|ONNX Runtime fp32"] = OrtNet(paths[name], threads)
        load_before = load_avg()
        at_512 = time_interleaved(variants, torch.rand(1, 3, SPEED_SIZE, SPEED_SIZE), rounds)
        at_256 = time_interleaved(variants, torch.rand(1, 3, FPS_SIZE, FPS_SIZE), rounds * 2)
        load_after = load_avg()
        for key, ms in at_512.items():
            name, variant = key.split("|")
            rows.append(
                {
                    "method": name,
                    "variant": f"{variant}, {threads} thread{'s' if threads > 1 else ''}",
                    "dataset": "speed",
                    "protocol": "speed",
                    "metrics": {},
                    "ms_per_image_512": round(ms, 1),
                    "images_per_s_256": round(1000 / at_256[key], 1),
                    "onnx_max_abs_diff": checks[name] if "ONNX" in variant else None,
                    "threads": threads,
                    "load": f"{load_before} → {load_after}",
                }
            )
    return rows


def predict_rate(
    run_dir: Path,
    photos: list[torch.Tensor],
    threads: int,
    workdir: Path,
    module_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Images/s of ``stage=predict`` (Trainer.predict with the run's DataModule, module and writer) at 256²,
    the marginal rate between a folder of PREDICT_SHORT and one of PREDICT_LONG photos."""
    seconds = {}
    for count in (PREDICT_SHORT, PREDICT_LONG):
        folder = workdir / f"predict_in_{count}"
        shutil.rmtree(folder, ignore_errors=True)
        for index in range(count):
            photo = photos[index % len(photos)]
            small = torch.nn.functional.interpolate(
                photo[None], size=(FPS_SIZE, FPS_SIZE), mode="bilinear", antialias=True
            )
            save_image(small[0], folder / f"photo{index:03d}.png")
        cfg = OmegaConf.load(run_dir / "config_resolved.yaml")
        checkpoint = read_results(run_dir)["tested_checkpoint"]
        overrides = {
            "stage": "predict",
            "input": str(folder),
            "output": str(workdir / f"predict_out_{count}"),
            "ckpt_path": checkpoint,
            "logger": None,
        }
        cfg = OmegaConf.merge(cfg, overrides, {"module": module_overrides or {}})
        cfg.callbacks.prediction_writer.output_dir = overrides["output"]
        for key in ("rich_progress_bar", "image_logger", "early_stopping", "model_checkpoint", "preemption"):
            cfg.callbacks.pop(key, None)
        cfg.trainer.enable_progress_bar = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            datamodule, module, trainer, _ = build(cfg)
            torch.set_num_threads(threads)
            started = time.perf_counter()
            trainer.predict(module, datamodule=datamodule, ckpt_path=checkpoint, return_predictions=False)
            seconds[count] = time.perf_counter() - started
    extra = PREDICT_LONG - PREDICT_SHORT
    return {
        "load": load_avg(),
        "images_per_s": round(extra / (seconds[PREDICT_LONG] - seconds[PREDICT_SHORT]), 1),
        "whole_call_images_per_s": round(PREDICT_LONG / seconds[PREDICT_LONG], 1),
        "seconds": {str(k): round(v, 2) for k, v in seconds.items()},
    }


def inference_ms(module: nn.Module, items: list[dict[str, Any]], threads: int) -> float:
    """Median ms of our module's inference (resize to the inference size, net, upsample) per test photo."""
    torch.set_num_threads(threads)
    times = []
    with torch.inference_mode():
        module(items[0]["input"][None])
        for item in items:
            started = time.perf_counter()
            module(item["input"][None])
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


# -- figures -------------------------------------------------------------------------------------------------
def comparison_figure(
    module: nn.Module, items: list[dict[str, Any]], mediapipe: dict[str, torch.Tensor], path: Path
) -> Path:
    """Columns: test photos; rows: photo, ground truth, ours, MediaPipe (background dimmed, errors tinted:
    red = background called person, blue = person missed)."""
    items = items[:FIGURE_IMAGES]
    photos = torch.stack([item["input"] for item in items])
    truth = torch.stack([item["target"][None].float() for item in items])
    with torch.inference_mode():
        ours = torch.sigmoid(module(photos))
    rows = {"photo": photos, "truth": truth, "ours": overlay(photos, ours, truth)}
    if mediapipe:
        theirs = torch.stack([mediapipe[item["name"]] for item in items])
        rows["mediapipe"] = overlay(photos, theirs, truth)
    return save_image(image_grid(rows, FIGURE_IMAGES), path)


def predict_figure(module: nn.Module, items: list[dict[str, Any]], path: Path) -> Path:
    """What stage=predict writes for two photos: photo | mask | cut-out (on a checkerboard) | portrait
    mode."""
    columns = []
    for item in items[:2]:
        photo = item["input"][None]
        with torch.inference_mode():
            alpha = torch.sigmoid(module(photo))
        rgba = cutout(photo, alpha)
        board = (
            (torch.arange(photo.shape[-2])[:, None] // 16 + torch.arange(photo.shape[-1]) // 16) % 2
        ).float()
        board = (0.75 + 0.2 * board).expand_as(photo)
        on_board = rgba[:, :3] * rgba[:, 3:] + board * (1 - rgba[:, 3:])
        columns += [photo, (alpha >= 0.5).float().expand_as(photo), on_board, blur_background(photo, alpha)]
    return save_image(image_grid({"": torch.cat(columns)}, len(columns)), path)


# -- the table -----------------------------------------------------------------------------------------------
def targets(rows: list[dict[str, Any]], extra: dict[str, Any]) -> list[dict[str, Any]]:
    ours = [r for r in rows if r["dataset"] == TEST_SETS["eg1800"] and r.get("val_iou") is not None]
    goals = []
    if ours:
        best = max(ours, key=lambda r: r["val_iou"])  # chosen on validation, never on test
        goals.append(
            target(
                f"best model by val IoU ({best['method']}, {best['train_minutes']} min): test IoU ≥ 0.96",
                best["metrics"]["iou"],
                0.96,
            )
        )
        peer = next(
            (
                r
                for r in rows
                if r["method"] == "mediapipe_selfie" and r["dataset"] == TEST_SETS["eg1800"] and r["metrics"]
            ),
            None,
        )
        goals.append(
            target(
                "best model ahead of MediaPipe on the same EG1800 test images (IoU)",
                None if peer is None else best["metrics"]["iou"] - peer["metrics"]["iou"],
                0.0,
                None if peer is None else best["metrics"]["iou"] > peer["metrics"]["iou"],
            )
        )
    for key, label in (("predict", extra.get("default_light")), ("predict_best", extra.get("best"))):
        if extra.get(key):
            goals.append(
                target(
                    f"light backbone ({label}): ≥ 20 images/s at 256×256 in the predict path",
                    extra[key]["images_per_s"],
                    20.0,
                )
            )
    by_name = {r["method"]: r for r in ours if "@" not in r["method"]}
    nll = by_name.get("pspnet_mnv2_nll")
    combined = [r for name, r in by_name.items() if name.startswith("pspnet_mnv2_nll_jaccard")]
    if nll and combined:
        best_w = max(combined, key=lambda r: r["val_iou"])
        goals.append(
            target(
                f"NLL + w·soft Jaccard ({best_w['method']}, w by val IoU) beats NLL alone: test IoU "
                "difference",
                best_w["metrics"]["iou"] - nll["metrics"]["iou"],
                0.0,
                best_w["metrics"]["iou"] > nll["metrics"]["iou"],
            )
        )
    return goals


def markdown(
    rows: list[dict[str, Any]], goals: list[dict[str, Any]], extra: dict[str, Any], command: str
) -> str:
    quality = [r for r in rows if r.get("protocol") != "speed" and r.get("source") != "paper"]
    speed = [r for r in rows if r.get("protocol") == "speed"]
    papers = [r for r in rows if r.get("source") == "paper"]
    lines = [
        "# Portrait segmentation benchmark",
        "",
        f"`{command}` on {machine()}, {extra['date']}. IoU at threshold 0.5 at each mask's own resolution "
        "(EG1800 300×400; human_seg as given), the net run at a short side of 224 px and its logits "
        "upsampled; `iou` = mean over images, `iou_dataset` = pooled over the test set; boundary F: DAVIS, "
        "0.8 % of the diagonal. Checkpoints chosen on validation IoU (100 EG1800 images). Our EG1800 test "
        "split (100 images, datamodules/splits/eg1800_faces.json) is **not** the authors' test list.",
        "",
        "## Quality",
        "",
    ]
    table = []
    for r in quality:
        m = r["metrics"]
        table.append(
            [
                r["method"],
                r.get("backbone", "–"),
                r.get("init", "–"),
                r.get("loss", "–"),
                r["dataset"],
                r.get("n", "–"),
                fmt(m.get("iou")),
                fmt(m.get("iou_dataset")),
                fmt(m.get("boundary_f")),
                fmt(r.get("val_iou")),
                r.get("train_minutes", "–"),
                r.get("epochs", "–"),
                f"{r['params'] / 1e6:.2f} M" if r.get("params") else "–",
                r.get("note", ""),
            ]
        )
    lines += markdown_table(
        [
            "run",
            "net",
            "init",
            "loss",
            "test set",
            "n",
            "IoU",
            "IoU (data set)",
            "boundary F",
            "val IoU",
            "train min",
            "epochs",
            "params",
            "note",
        ],
        table,
    )
    lines += [""] + [f"- {note}" for note in extra.get("notes", [])]
    lines += [
        "- MediaPipe: the selfie model of the mediapipe 0.10.14 wheel (general, 256×256 input, its mask "
        "resized to the photo by MediaPipe) on the very pixels our test step scores, run in its own "
        "environment and process (TFLite, its own threads), scored with the same metric functions at the "
        "same resolution.",
    ]
    lines += ["", "Published (their test images, not ours):", ""]
    lines += markdown_table(
        ["method", "data", "IoU", "params", "source"],
        [
            [
                r["method"],
                r["dataset"],
                fmt(r["metrics"]["iou"]),
                f"{r['params']:,.0f}" if r.get("params") else "–",
                r["reference"],
            ]
            for r in papers
        ],
    )
    if speed:
        loads = sorted({f"{r['threads']} thread(s): {r['load']}" for r in speed})
        lines += [
            "",
            "## Speed",
            "",
            f"CPU, batch 1, fp32. `uptime` during the rounds: {'; '.join(loads)}.",
            "",
        ]
        lines += markdown_table(
            [
                "net",
                "runtime",
                "ms per 512×512 image",
                "images/s at 256×256 (net only)",
                "ONNX vs torch max |Δ logit|",
            ],
            [
                [
                    r["method"],
                    r["variant"],
                    fmt(r["ms_per_image_512"], 1),
                    fmt(r["images_per_s_256"], 1),
                    "–" if r.get("onnx_max_abs_diff") is None else f"{r['onnx_max_abs_diff']:.1e}",
                ]
                for r in speed
            ],
        )
    lines += [
        "",
        "Predict path (`stage=predict` on a folder of 256×256 photos: read, resize, net, upsample, mask "
        f"+ cut-out + portrait mode, three PNGs; torch fp32, {extra['threads']} threads; the marginal rate "
        f"of {PREDICT_LONG - PREDICT_SHORT} more photos) and one EG1800 test photo (300×400, batch 1, "
        "median):",
        "",
    ]
    table = []
    for label, key, ms_key in (
        (f"{extra.get('default_light')} (stride 16, short side 224)", "predict", "ms_light"),
        (f"{extra['best']} (best)", "predict_best", "ms_best"),
    ):
        p = extra.get(key)
        if p:
            long, short = p["seconds"][str(PREDICT_LONG)], p["seconds"][str(PREDICT_SHORT)]
            table.append(
                [
                    label,
                    f"**{p['images_per_s']}**",
                    f"{long} − {short} s",
                    p["whole_call_images_per_s"],
                    fmt(extra.get(ms_key), 1),
                    p["load"],
                ]
            )
    table.append(
        ["MediaPipe selfie (its own process)", "–", "–", "–", fmt(extra.get("ms_mediapipe"), 1), "–"]
    )
    lines += markdown_table(
        [
            "configuration",
            "images/s (predict, 256²)",
            f"{PREDICT_LONG} vs {PREDICT_SHORT} photos",
            "images/s whole call",
            "ms per EG1800 photo",
            "`uptime`",
        ],
        table,
    )
    lines += ["", "## Targets (issue 17)", ""]
    met = {True: "yes", False: "**no**", None: "not run"}
    lines += markdown_table(
        ["target", "value", "met"],
        [[g["target"], fmt(g["value"]), met[g["met"]]] for g in goals],
    )
    lines += ["", "![ours and MediaPipe on EG1800 test photos](portrait_segmentation_compare.png)", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="the committed benchmark (full schedules)")
    mode.add_argument("--quick", action="store_true", help="tiny trainings (the default)")
    parser.add_argument("--reuse", action="store_true", help="evaluate finished runs instead of rerunning")
    parser.add_argument("--no-train", action="store_true", help="skip runs that have not finished")
    parser.add_argument("--train-only", action="store_true", help="only run the trainings, one after another")
    parser.add_argument(
        "--threads",
        default="1,2",
        help="torch / ONNX Runtime thread counts of the net timings (comma-separated)",
    )
    parser.add_argument("--predict-threads", type=int, default=2, help="torch threads of the predict path")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default: quick 3, full 15)")
    parser.add_argument("--mediapipe-python", type=Path, default=ROOT / ".venv-mediapipe" / "bin" / "python")
    args = parser.parse_args()
    register_resolvers()
    suffix = "" if args.full else "_quick"
    command = "python benchmarks/portrait_segmentation.py" + (" --full" if args.full else " --quick")
    bench_dir = ROOT / "outputs" / "bench" / "portrait_segmentation" / ("" if args.full else "quick")
    rounds = args.rounds or (15 if args.full else 3)

    finished: dict[str, tuple[Run, Path, dict[str, Any]]] = {}
    for run in RUNS:
        run_dir = bench_dir / run.name
        if args.no_train and not (read_results(run_dir) and not read_results(run_dir).get("interrupted")):
            say(f"SKIPPED {run.name}: not finished (--no-train)")
            continue
        overrides = [f"experiment={run.experiment}", *run.overrides, *([] if args.full else QUICK)]
        if run.init_from:
            parent = read_results(bench_dir / run.init_from)
            if not parent or parent.get("interrupted"):
                say(f"SKIPPED {run.name}: it continues {run.init_from}, which has not finished")
                continue
            overrides.append(f"init_weights={parent['tested_checkpoint']}")
        try:
            result = run_experiment(overrides, run_dir, args.reuse, log_file=run_dir.with_suffix(".log"))
        except RuntimeError as error:
            say(f"FAILED {run.name}: {error}")
            continue
        finished[run.name] = (run, run_dir, result)
        say(f"{run.name}: finished")
    if args.train_only or not finished:
        return

    first_dir = next(iter(finished.values()))[1]
    sets = test_sets(OmegaConf.load(first_dir / "config_resolved.yaml"), None if args.full else 8)
    n = {name: len(items) for name, items in sets.items()}
    rows: list[dict[str, Any]] = []
    minutes: dict[str, float] = {}
    for run, run_dir, result in finished.values():
        own = round((result.get("fit_seconds") or 0) / 60, 1)
        minutes[run.name] = own + (minutes.get(run.init_from, 0.0) if run.init_from else 0.0)
        rows += quality_rows(run, run_dir, result, n, train_minutes=minutes[run.name])

    # the best run on validation; its inference size and mirror averaging chosen on validation too; then
    # its own test step with them (python run.py … stage=test)
    best = max(finished, key=lambda name: best_val_iou(finished[name][2]["tested_checkpoint"]) or 0)
    run, run_dir, result = finished[best]
    say(f"best run on validation: {best}; choosing its inference settings on validation")
    size, flip, tuned_val, candidates = tune_inference(run_dir)
    settings = {"inference_size": size, "flip_average": flip}
    tuned = Run(f"{best} @{size}{'+flip' if flip else ''}", run.experiment, run.overrides, run.init_from)
    tuned_dir = bench_dir / f"{best}_test_{size}{'_flip' if flip else ''}"
    test_overrides = [
        f"experiment={run.experiment}",
        *run.overrides,
        *([] if args.full else QUICK),
        "stage=test",
        f"ckpt_path={result['tested_checkpoint']}",
        f"module.inference_size={size}",
        f"module.flip_average={str(flip).lower()}",
    ]
    tested = run_experiment(test_overrides, tuned_dir, args.reuse, log_file=tuned_dir.with_suffix(".log"))
    tuned_rows = quality_rows(tuned, tuned_dir, tested, n, tuned_val, minutes[best], result.get("epochs"))
    for row in tuned_rows:
        row["note"] = "inference settings chosen on validation"
        row["val_iou_by_inference"] = {k: round(v, 4) for k, v in candidates.items()}
    rows += tuned_rows
    extra_notes = [
        f"`{tuned.name}`: {best}'s checkpoint, the net at a short side of {size} px"
        + (" averaged with the mirror image" if flip else "")
        + ", chosen on validation IoU among "
        + ", ".join(f"{k} ({v:.4f})" for k, v in candidates.items())
        + "; the test numbers are that configuration's own test step."
    ]

    # the light model's default configuration (stride 16, 224, no mirror) for the speed target
    light = [k for k in finished if k.startswith("pspnet_mnv2") and "os8" not in k]
    default_light = (
        max(light, key=lambda k: best_val_iou(finished[k][2]["tested_checkpoint"]) or 0) if light else None
    )
    extra: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "threads": args.predict_threads,
        "best": tuned.name,
        "default_light": default_light,
        "notes": extra_notes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        say("MediaPipe on the test sets")
        peer_rows, peer_masks, extra["ms_mediapipe"] = mediapipe_rows(sets, args.mediapipe_python, workdir)
        rows += peer_rows
        say("speed")
        nets: dict[str, nn.Module] = {}
        for _, net_dir, _ in finished.values():
            net_cfg = OmegaConf.load(net_dir / "config_resolved.yaml").module.net
            label = net_cfg._target_.rsplit(".", 1)[1] + (
                f" (stride {net_cfg.output_stride})" if net_cfg.get("output_stride") else ""
            )
            if label not in nets:
                nets[label] = load_module(net_dir)[0].net
        rows += speed_rows(nets, [int(t) for t in args.threads.split(",")], rounds, workdir)
        photos = [item["input"] for item in sets["eg1800"]]
        module, _ = load_module(run_dir)
        module.inference_size, module.flip_average = size, flip
        extra["ms_best"] = inference_ms(module, sets["eg1800"], args.predict_threads)
        extra["predict_best"] = predict_rate(run_dir, photos, args.predict_threads, workdir, settings)
        if default_light:
            light_module, _ = load_module(finished[default_light][1])
            extra["ms_light"] = inference_ms(light_module, sets["eg1800"], args.predict_threads)
            extra["predict"] = predict_rate(finished[default_light][1], photos, args.predict_threads, workdir)
        results = ROOT / "benchmarks" / "results"
        comparison_figure(
            module, sets["eg1800"], peer_masks, results / f"portrait_segmentation{suffix}_compare.png"
        )
        predict_figure(module, sets["eg1800"], results / f"portrait_segmentation{suffix}_predict.png")
    rows += [{**row, "source": "paper"} for row in PUBLISHED]
    goals = targets(rows, extra)
    text = markdown(rows, goals, extra, command)
    if suffix:
        text = text.replace("portrait_segmentation_compare.png", "portrait_segmentation_quick_compare.png")
    write_results(f"portrait_segmentation{suffix}", command, rows, text)
    payload_path = ROOT / "benchmarks" / "results" / f"portrait_segmentation{suffix}.json"
    payload = json.loads(payload_path.read_text())
    payload.update(
        {
            "targets": goals,
            "predict_path": {"default_light": extra.get("predict"), "best": extra.get("predict_best")},
            "ms_per_eg1800_photo": {
                "best": extra.get("ms_best"),
                "default_light": extra.get("ms_light"),
                "mediapipe": extra.get("ms_mediapipe"),
            },
        }
    )
    payload_path.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
