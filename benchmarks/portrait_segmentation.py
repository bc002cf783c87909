"""Portrait segmentation benchmark: PSPNet-MobileNetV2 with the NLL, the soft Jaccard and NLL + w·soft Jaccard
(a few w), PSPNet-ResNet18 and a U-Net baseline, against MediaPipe Selfie Segmentation on the same images;
IoU on our EG1800 test split and on human_seg; CPU speed; published figures beside ours.

    python benchmarks/portrait_segmentation.py --full          # trains every run (hours on 2 CPU cores)
    python benchmarks/portrait_segmentation.py --full --reuse  # evaluates runs that already finished
    python benchmarks/portrait_segmentation.py [--quick]       # tiny trainings, same tables (minutes)
    python benchmarks/portrait_segmentation.py --speed-only    # the predict path timed again, written into
                                                               # the committed full results

Quality: every row is a run's own test step (benchmarks/harness). Trained rows come from `python run.py
experiment=<experiment> …` into outputs/bench/portrait_segmentation/<run>/ (quick: …/quick/<run>/): the
checkpoint with the best validation IoU, the net run at a short side of 224 px, logits upsampled (bilinear)
to the mask's own size, IoU at threshold 0.5 per image (mean: "iou") and over the test set ("iou_dataset"),
boundary F (DAVIS, 0.8 % of the diagonal). EG1800 test: 100 images of our split
(datamodules/splits/eg1800_faces.json, not the authors' test list); human_seg: 290 photos of people never
trained on, each at its own size. The best run on validation gets its inference size and mirror averaging
chosen on validation too (its test step on the validation images), then its own `stage=test` with them.

Peer: MediaPipe Selfie Segmentation (the general model of the mediapipe 0.10.14 wheel; 256×256 input, its
mask resized to the photo by MediaPipe) served from its own environment (`--mediapipe-python`, default
.venv-mediapipe/bin/python; benchmarks/mediapipe_selfie.py) as the net of our test step, fed each photo at
its own size: the same pixels, metric code and resolution. Its ms per image is its own `process` call.

Speed (`--threads`, default 1,2; `uptime` load in the table): ms per 512×512 image, PyTorch fp32 and ONNX
Runtime fp32 in the same interleaved rounds (harness.time_variants), images/s at 256×256 of the net alone,
ms per EG1800 photo (300×400) of the module's inference, and images/s of the predict path (`stage=predict`
on a folder of 256×256 photos: read, resize, net, upsample, mask + cut-out + portrait mode, three PNG
writes) as the marginal rate between a short and a long folder. Writes
benchmarks/results/portrait_segmentation.{md,json} (quick: portrait_segmentation_quick.*) and two JPEG
figures.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from harness import (
    FP32,
    ORT_FP32,
    RESULTS,
    ROOT,
    benchmark_parser,
    finished_checkpoint,
    fmt,
    load_run,
    machine,
    markdown_table,
    precision_variants,
    previous_results,
    read_test_metrics,
    reusable,
    run_config,
    run_experiment,
    run_metrics,
    say,
    target,
    targets_markdown,
    time_rounds,
    time_variants,
    write_results,
)
from omegaconf import OmegaConf
from torch import nn

from callbacks.image_logger import image_grid
from datamodules.io import save_image
from framework.export import check_inputs, check_onnx
from framework.resolvers import register_resolvers
from framework.runner import RUNTIMES, build, checkpoint_to_load
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
    Run("pspnet_mnv2_nll_jaccard_w1", "seg_ablation", ["loss.jaccard_weight=1"]),
    Run("pspnet_mnv2_os8_best", "seg_best", init_from="pspnet_mnv2_nll_jaccard_w1"),
    Run("pspnet_mnv2_nll", "seg_nll"),
    Run("pspnet_mnv2_soft_jaccard", "seg_soft_jaccard"),
    Run("unet_nll_jaccard_w1", "seg_unet"),
    Run("pspnet_mnv2_nll_jaccard_w0.5", "seg_ablation", ["loss.jaccard_weight=0.5"]),
    Run("pspnet_mnv2_nll_jaccard_w2", "seg_ablation", ["loss.jaccard_weight=2"]),
    Run("pspnet_resnet18_nll_jaccard_w1", "seg_resnet18"),
]
TEST_SETS = {"eg1800": "EG1800 test (ours)", "human_seg": "human_seg"}
METRICS = ("iou", "iou_dataset", "boundary_f")
INFERENCE = [(size, flip) for size in (224, 256, 300, 352) for flip in (False, True)]  # chosen on val
SPEED_SIZE, FPS_SIZE = 512, 256
PREDICT_SHORT, PREDICT_LONG = 8, 40  # folder sizes of the predict-path timing (the rate is their difference)
FIGURE_IMAGES = 6
PUBLISHED = [  # their test images are not ours: see the table's note
    {
        "method": "PortraitNet (MobileNetV2 U-shape, 224×224)",
        "dataset": "EG1800 test (authors' 289 images)",
        "metrics": {"iou": 0.966},
        "params": 2.1e6,
        "reference": "Zhang et al., PortraitNet, Computers & Graphics 82, 2019 (mIoU 96.6)",
    },
    {
        "method": "SINet (86.9 K parameters)",
        "dataset": "EG1800 test (authors' split)",
        "metrics": {"iou": 0.952},
        "params": 86.9e3,
        "reference": "Park et al., SINet, WACV 2020 (mIoU 95.2, 0.087 M params)",
    },
    {
        "method": "PSPNet (ResNet-101, COCO pre-training)",
        "dataset": "PASCAL VOC 2012 test (21 classes: for scale only)",
        "metrics": {"iou": 0.854},
        "reference": "Zhao et al., Pyramid Scene Parsing Network, CVPR 2017 (abstract: 85.4 % mIoU)",
    },
]


def load_avg() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def load_module(run_dir: Path, **settings: Any) -> nn.Module:
    """The run's LightningModule with its tested checkpoint (eval mode), module ``settings`` applied."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ResNet's from-scratch warning: the checkpoint has its weights
        module, _ = load_run(run_dir)
    for key, value in settings.items():
        setattr(module, key, value)
    return module.eval()


def best_val_iou(run_dir: Path) -> float | None:
    """The validation IoU that chose the run's checkpoint (ModelCheckpoint's best score)."""
    checkpoint = torch.load(finished_checkpoint(run_dir), map_location="cpu", weights_only=True)
    scores = [
        v.get("best_model_score") for k, v in checkpoint.get("callbacks", {}).items() if "Checkpoint" in k
    ]
    return float(scores[0]) if scores and scores[0] is not None else None


def describe(cfg: Any) -> dict[str, Any]:
    """Loss, net, initialisation and output stride of a run, for the table."""
    loss, net = cfg.module.loss, cfg.module.net
    surrogate = "soft Jaccard" if loss.surrogate == "soft_jaccard" else "Lovász"
    parts = ["NLL" if loss.nll_weight == 1 else f"{loss.nll_weight:g}·NLL"] if loss.nll_weight else []
    if loss.jaccard_weight:
        alone = loss.jaccard_weight == 1 and not loss.nll_weight
        parts.append(surrogate if alone else f"{loss.jaccard_weight:g}·{surrogate}")
    builder = net._target_.rsplit(".", 1)[1]
    init = "ImageNet (TFLite)" if "mobilenet" in builder else "from scratch"
    if "resnet" in builder and net.get("weights") not in (None, "imagenet"):
        init = "ImageNet"
    return {
        "loss": " + ".join(parts),
        "net": builder,
        "init": init,
        "output_stride": net.get("output_stride"),
    }


def quality_rows(name: str, run_dir: Path, info: dict[str, Any], note: str = "") -> list[dict[str, Any]]:
    """One row per test set of a run's own test metrics (its ``metrics.json``)."""
    tested = read_test_metrics(run_dir)
    cfg = run_config(run_dir)
    return [
        {
            "method": name,
            "dataset": label,
            "n": tested.n.get(test_set),
            "metrics": {m: round(v, 4) for m, v in tested.of(test_set).items() if m in METRICS},
            **info,
            "inference_size": cfg.module.inference_size,
            "flip_average": cfg.module.get("flip_average", False),
            **({"note": note} if note else {}),
        }
        for test_set, label in TEST_SETS.items()
        if test_set in tested.metrics
    ]


def choose_inference(run_dir: Path) -> tuple[int, bool, dict[str, float]]:
    """The inference size (short side) and mirror averaging that give the run's checkpoint the best IoU on
    the **validation** images (the task's test step on them, never on the test images)."""
    val = {"val": OmegaConf.to_container(run_config(run_dir).data.val[0])}
    scores = {}
    for size, flip in INFERENCE:
        settings = {"data.test": val, "module.inference_size": size, "module.flip_average": flip}
        scores[f"{size}{' + flip' if flip else ''}"] = run_metrics(run_dir, settings).of("val")["iou"]
    best = max(scores, key=scores.__getitem__)
    return int(best.split()[0]), "flip" in best, scores


# -- the peer: MediaPipe Selfie Segmentation as the net of our test step ------------------------------------
class MediaPipeNet(nn.Module):
    """MediaPipe Selfie Segmentation in its own environment (benchmarks/mediapipe_selfie.py's server) as a
    net: (B, 3, H, W) RGB in [0, 1] → person logits log(p / (1 − p)) at the same size; ``ms`` collects the
    milliseconds of each of its ``process`` calls."""

    def __init__(self, python: Path) -> None:
        super().__init__()
        server = ROOT / "benchmarks" / "mediapipe_selfie.py"
        env = {**os.environ, "GLOG_minloglevel": "2"}
        self.process = subprocess.Popen(
            [str(python), str(server)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"{server} did not start under {python}")
        self.info = json.loads(line)
        self.ms: list[float] = []

    def segment(self, image: torch.Tensor) -> torch.Tensor:
        """Person probability (H, W) of one (3, H, W) image in [0, 1]."""
        buffer = io.BytesIO()
        np.save(buffer, (image * 255).round().byte().permute(1, 2, 0).numpy())
        stdin, stdout = self.process.stdin, self.process.stdout
        stdin.write(struct.pack("<Q", buffer.tell()) + buffer.getvalue())  # type: ignore[union-attr]
        stdin.flush()  # type: ignore[union-attr]
        ms, length = struct.unpack("<dQ", stdout.read(16))  # type: ignore[union-attr]
        self.ms.append(ms)
        return torch.from_numpy(np.load(io.BytesIO(stdout.read(length)))).clamp(0, 1)  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([self.segment(image) for image in x.float().cpu()])[:, None]
        return torch.logit(probs, eps=1e-6)

    def close(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(timeout=60)


def mediapipe_rows(run_dir: Path, peer: MediaPipeNet) -> tuple[list[dict[str, Any]], float | None]:
    """MediaPipe's rows (our test step with it as the net, each photo at its own size) and its median ms per
    EG1800 photo."""
    rows, ms = [], None
    tests = run_config(run_dir).data.test
    info = {"net": f"MediaPipe selfie (model {peer.info['model_selection']}, {peer.info['mediapipe']})"}
    for test_set, label in TEST_SETS.items():
        peer.ms.clear()
        settings = {
            "data.test": {test_set: OmegaConf.to_container(tests[test_set])},
            "module.inference_size": None,
            "module.flip_average": False,
        }
        tested = run_metrics(run_dir, settings, net=peer)
        median = statistics.median(peer.ms)
        ms = median if test_set == "eg1800" else ms
        metrics = {m: round(v, 4) for m, v in tested.of(test_set).items() if m in METRICS}
        rows.append(
            {
                "method": "mediapipe_selfie",
                "dataset": label,
                "n": tested.n.get(test_set),
                "metrics": metrics,
                **info,
                "init": "Google's trained model",
                "ms_per_image": round(median, 1),
                "note": "our test step, MediaPipe as the net",
            }
        )
    return rows, ms


# -- speed ---------------------------------------------------------------------------------------------------
def speed_rows(
    nets: dict[str, nn.Module], thread_counts: list[int], rounds: int, workdir: Path
) -> list[dict]:
    """ms per 512×512 image and images/s at 256×256 of every net, torch fp32 and ONNX Runtime fp32 in the
    same interleaved rounds, per thread count; ONNX Runtime's max |Δ logit| against torch."""
    rows, checks = [], {}
    x512, x256 = torch.rand(1, 3, SPEED_SIZE, SPEED_SIZE), torch.rand(1, 3, FPS_SIZE, FPS_SIZE)
    for threads in thread_counts:
        torch.set_num_threads(threads)
        variants = {
            name: precision_variants(net, x256, workdir, threads, (FP32, ORT_FP32), re.sub(r"\W+", "_", name))
            for name, net in nets.items()
        }
        for name, net in nets.items():
            if name not in checks:
                path = variants[name][ORT_FP32].path
                checks[name] = check_onnx(path, net, check_inputs(net, x256))
        before = load_avg()
        at_512 = time_variants({name: (v, x512) for name, v in variants.items()}, rounds)
        at_256 = time_variants({name: (v, x256) for name, v in variants.items()}, 2 * rounds)
        load = f"{before} → {load_avg()}"
        for t512, t256 in zip(at_512, at_256, strict=True):
            rows.append(
                {
                    "method": t512.model,
                    "variant": f"{t512.variant}, {threads} thread{'s' if threads > 1 else ''}",
                    "dataset": "speed",
                    "protocol": "speed",
                    "threads": threads,
                    "metrics": {
                        "ms_per_image_512": round(t512.ms_per_image, 1),
                        "images_per_s_256": round(t256.fps, 1),
                        "onnx_max_abs_diff": checks[t512.model] if t512.variant == ORT_FP32 else None,
                    },
                    "load": load,
                }
            )
    return rows


def predict_key(configuration: str, runtime: str) -> str:
    """The ``extra["predict_path"]`` key of a configuration's predict-path rate in ``runtime``."""
    return configuration if runtime == "torch" else f"{configuration}_{runtime}"


def predict_rate(
    run_dir: Path,
    photos: list[torch.Tensor],
    threads: int,
    workdir: Path,
    runtime: str = "torch",
    **settings: Any,
) -> dict:
    """Images/s of ``stage=predict`` (Trainer.predict with the run's DataModule, module and writer; the net in
    ``runtime``: torch, or onnx as ``runtime=onnx`` runs it) on 256² photos: the marginal rate between folders
    of PREDICT_SHORT and PREDICT_LONG photos (each predicted once to warm up, then once timed)."""
    checkpoint = finished_checkpoint(run_dir)

    def predict(count: int) -> None:
        folder, out = workdir / f"predict_in_{count}", workdir / f"predict_out_{count}"
        if not folder.is_dir():
            for index in range(count):
                photo = photos[index % len(photos)][None]
                small = nn.functional.interpolate(
                    photo, size=(FPS_SIZE, FPS_SIZE), mode="bilinear", antialias=True
                )
                save_image(small[0], folder / f"photo{index:03d}.png")
        shutil.rmtree(out, ignore_errors=True)
        cfg = OmegaConf.merge(
            run_config(run_dir),
            {"stage": "predict", "input": str(folder), "ckpt_path": checkpoint, "logger": None},
            {"module": settings, "trainer": {"enable_progress_bar": False}},
        )
        cfg.callbacks.prediction_writer.output_dir = str(out)
        for key in ("rich_progress_bar", "image_logger", "early_stopping", "model_checkpoint", "preemption"):
            cfg.callbacks.pop(key, None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            datamodule, module, trainer, _ = build(cfg)
            torch.set_num_threads(threads)
            load_from = checkpoint_to_load(module, checkpoint, runtime)  # as run.py's runtime=…
            trainer.predict(module, datamodule=datamodule, ckpt_path=load_from, return_predictions=False)

    seconds = time_rounds(
        {count: lambda count=count: predict(count) for count in (PREDICT_SHORT, PREDICT_LONG)}, 1
    )
    return {
        "images_per_s": round(
            (PREDICT_LONG - PREDICT_SHORT) / (seconds[PREDICT_LONG] - seconds[PREDICT_SHORT]), 1
        ),
        "whole_call_images_per_s": round(PREDICT_LONG / seconds[PREDICT_LONG], 1),
        "seconds": {str(k): round(v, 2) for k, v in seconds.items()},
        "threads": threads,
        "runtime": runtime,
        "load": load_avg(),
    }


@dataclass
class PredictConfig:
    """A configuration whose inference is timed: its name in the tables, the run folder whose config and
    checkpoint it loads, module settings on top, and whether that run is a stand-in (:func:`timed_run`)."""

    name: str
    run_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)
    stand_in: bool = False


def predict_speed(
    configs: dict[str, PredictConfig],
    items: list[dict[str, Any]],
    threads: int,
    rounds: int,
    workdir: Path,
    extra: dict[str, Any],
    predict_rounds: int = 1,
) -> dict[str, nn.Module]:
    """Times each configuration's inference on one EG1800 test photo (``extra["ms_per_eg1800_photo"]``) and
    its predict path in every runtime (``extra["predict_path"]``: the median of ``predict_rounds``
    interleaved rounds, and every round's rate); returns the loaded modules."""
    torch.set_num_threads(threads)
    loaded = {key: load_module(c.run_dir, **c.settings) for key, c in configs.items()}
    photo = items[0]["input"][None]
    for t in time_variants({key: ({FP32: module}, photo) for key, module in loaded.items()}, rounds):
        extra["ms_per_eg1800_photo"][t.model] = round(t.ms_per_image, 1)
    photos = [item["input"] for item in items]
    rates: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for index in range(predict_rounds):  # interleaved: every configuration and runtime once per round
        for key, c in configs.items():
            for runtime in RUNTIMES:
                say(f"predict path, round {index + 1}/{predict_rounds}: {key}, runtime={runtime}")
                rate = predict_rate(c.run_dir, photos, threads, workdir, runtime, **c.settings)
                rates.setdefault((key, runtime), []).append(rate)
    for (key, runtime), measured in rates.items():
        by_rate = sorted(measured, key=lambda r: r["images_per_s"])
        entry = {"run": configs[key].name, **by_rate[len(by_rate) // 2]}  # the median round
        entry["rounds"] = [r["images_per_s"] for r in measured]
        if configs[key].stand_in:
            entry["weights"] = "stand-in"
        extra["predict_path"][predict_key(key, runtime)] = entry
    return loaded


# -- figures -------------------------------------------------------------------------------------------------
def test_items(run_dir: Path, count: int) -> list[dict[str, Any]]:
    """The first ``count`` EG1800 test items as the run's test step sees them (photo, mask, name)."""
    cfg = run_config(run_dir, {"data.test_size": count})
    datamodule = hydra.utils.instantiate(cfg.data, predict_input=None)
    datamodule.setup("test")
    return list(datamodule.test_set[datamodule.test_set_names.index("eg1800")])


@torch.inference_mode()
def figures(module: nn.Module, items: list[dict[str, Any]], peer: MediaPipeNet | None, suffix: str) -> None:
    """Test photos with the truth, ours and MediaPipe's masks (background dimmed; red = background called
    person, blue = person missed); and what stage=predict writes for two photos: photo | mask | cut-out (on
    a checkerboard) | portrait mode."""
    photos = torch.stack([item["input"] for item in items])
    truth = torch.stack([item["target"][None].float() for item in items])
    rows = {"photo": photos, "truth": truth, "ours": overlay(photos, torch.sigmoid(module(photos)), truth)}
    if peer is not None:
        rows["mediapipe"] = overlay(photos, torch.sigmoid(peer(photos)), truth)
    save_image(image_grid(rows, len(items)), RESULTS / f"portrait_segmentation{suffix}_compare.jpg")
    columns = []
    for photo in photos[:2, None]:
        alpha = torch.sigmoid(module(photo))
        rgba = cutout(photo, alpha)
        board = (
            (torch.arange(photo.shape[-2])[:, None] // 16 + torch.arange(photo.shape[-1]) // 16) % 2
        ).float()
        on_board = rgba[:, :3] * rgba[:, 3:] + (0.75 + 0.2 * board) * (1 - rgba[:, 3:])
        columns += [photo, (alpha >= 0.5).float().expand_as(photo), on_board, blur_background(photo, alpha)]
    grid = image_grid({"": torch.cat(columns)}, len(columns))
    save_image(grid, RESULTS / f"portrait_segmentation{suffix}_predict.jpg")


# -- the table -----------------------------------------------------------------------------------------------
def targets(rows: list[dict[str, Any]], extra: dict[str, Any]) -> list[dict[str, Any]]:
    ours = [r for r in rows if r["dataset"] == TEST_SETS["eg1800"] and r.get("val_iou") is not None]
    goals = []
    if ours:
        best = max(ours, key=lambda r: r["val_iou"])  # chosen on validation, never on test
        goals.append(
            target(
                f"best by val IoU ({best['method']}, {best['train_minutes']} train min): test IoU ≥ 0.96",
                best["metrics"]["iou"],
                0.96,
            )
        )
        peer = [
            r
            for r in rows
            if r["method"] == "mediapipe_selfie"
            and r["dataset"] == TEST_SETS["eg1800"]
            and "iou" in r["metrics"]  # not its "not run" row
        ]
        margin = best["metrics"]["iou"] - peer[0]["metrics"]["iou"] if peer else None
        goals.append(
            target("best model ahead of MediaPipe on the same EG1800 test images (IoU margin)", margin, 0.0)
        )
        if margin == 0.0:
            goals[-1]["met"] = False  # ahead means strictly above
    for key, label in (("default_light", "light backbone, default settings"), ("best", "best configuration")):
        rates = [r for r in (extra["predict_path"].get(predict_key(key, rt)) for rt in RUNTIMES) if r]
        if rates:  # the faster runtime of the predict path (run.py runtime=torch | onnx)
            rate = max(rates, key=lambda r: r["images_per_s"])
            where = f"{rate['run']}, runtime={rate.get('runtime', 'torch')}"
            name = f"{label} ({where}): ≥ 20 images/s at 256² in the predict path"
            goals.append(target(name, rate["images_per_s"], 20.0))
    by_name = {r["method"]: r for r in ours if "@" not in r["method"]}
    combined = [r for name, r in by_name.items() if name.startswith("pspnet_mnv2_nll_jaccard")]
    if "pspnet_mnv2_nll" in by_name and combined:
        chosen = max(combined, key=lambda r: r["val_iou"])
        gain = chosen["metrics"]["iou"] - by_name["pspnet_mnv2_nll"]["metrics"]["iou"]
        name = f"NLL + w·soft Jaccard ({chosen['method']}, w by val IoU) beats NLL alone (test IoU gain)"
        goals.append(target(name, gain, 0.0))
        goals[-1]["met"] = gain > 0
    return goals


def markdown(
    rows: list[dict[str, Any]], goals: list[dict[str, Any]], extra: dict[str, Any], command: str
) -> str:
    quality = [r for r in rows if r.get("protocol") != "speed" and r.get("source") != "paper"]
    speed = [r for r in rows if r.get("protocol") == "speed"]
    papers = [r for r in rows if r.get("source") == "paper"]
    suffix = "_quick" if extra["mode"] == "quick" else ""
    lines = [
        "# Portrait segmentation benchmark",
        "",
        f"`{command}` ({extra['mode']}; {extra.get('quality_machine') or machine()}). Every row is a run's "
        "own test step: IoU at threshold "
        "0.5 at each mask's own resolution (EG1800 300×400; human_seg as given), the net run at the short "
        "side in the `infer` column and its logits upsampled; `IoU` = mean over images, `IoU (set)` = pooled "
        "over the test set; boundary F: DAVIS, 0.8 % of the diagonal. Checkpoints chosen on validation IoU "
        "(100 EG1800 images). Our EG1800 test split (100 images, datamodules/splits/eg1800_faces.json) is "
        "**not** the authors' test list.",
    ]
    if extra["mode"] == "quick":
        lines += [
            "",
            "**Quick mode**: 4 training batches per run, 8 images per test set: the numbers test the "
            "pipeline, they are not results.",
        ]
    table = [
        [
            r["method"],
            r.get("net", "–"),
            r.get("init", "–"),
            r.get("loss", "–"),
            r["dataset"],
            r.get("n", "–"),
            fmt(r["metrics"].get("iou"), 3),
            fmt(r["metrics"].get("iou_dataset"), 3),
            fmt(r["metrics"].get("boundary_f"), 3),
            fmt(r.get("val_iou"), 3),
            "–"
            if r.get("inference_size") is None
            else f"{r['inference_size']}{' + flip' if r.get('flip_average') else ''}",
            r.get("train_minutes", "–"),
            r.get("epochs", "–"),
            f"{r['params'] / 1e6:.2f} M" if r.get("params") else "–",
            r.get("note", ""),
        ]
        for r in quality
    ]
    header = ["run", "net", "init", "loss", "test set", "n", "IoU", "IoU (set)", "boundary F", "val IoU"]
    lines += [
        "",
        "## Quality",
        "",
        *markdown_table([*header, "infer", "train min", "epochs", "params", "note"], table),
    ]
    lines += ["", *[f"- {note}" for note in extra["notes"]]]
    lines += ["", "Published (their test images, not ours):", ""]
    lines += markdown_table(
        ["method", "data", "IoU", "params", "source"],
        [
            [
                r["method"],
                r["dataset"],
                fmt(r["metrics"]["iou"], 3),
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
            f"CPU, batch 1, fp32, median of interleaved rounds. `uptime`: {'; '.join(loads)}.",
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
                    fmt(r["metrics"]["ms_per_image_512"], 1),
                    fmt(r["metrics"]["images_per_s_256"], 1),
                    "–"
                    if r["metrics"].get("onnx_max_abs_diff") is None
                    else f"{r['metrics']['onnx_max_abs_diff']:.1e}",
                ]
                for r in speed
            ],
        )
    lines += [
        "",
        "Predict path (`stage=predict` on a folder of 256×256 photos: read, resize, net, upsample, mask + "
        "cut-out + portrait mode, three PNGs; fp32, the net in torch or, `runtime=onnx`, ONNX Runtime; the "
        "marginal rate of "
        f"{PREDICT_LONG - PREDICT_SHORT} more photos) and the module's inference on one EG1800 test photo "
        "(300×400, batch 1, median):",
        "",
    ]
    if extra.get("predict_command"):
        stand_ins = any(p.get("weights") == "stand-in" for p in extra["predict_path"].values())
        lines += [
            f"Timed again with `{extra['predict_command']}` on {extra['predict_machine']}."
            + (
                " Stand-in weights: the configuration's run after a one-epoch fit on 8 photos, because its "
                "trained run folder is not on this machine: the same net, settings and computation, so the "
                "same speed."
                if stand_ins
                else ""
            ),
            "",
        ]
    table = []
    for key, label in (("default_light", "default settings"), ("best", "best configuration")):
        for runtime in RUNTIMES:
            p = extra["predict_path"].get(predict_key(key, runtime))
            ms = extra["ms_per_eg1800_photo"].get(key) if runtime == "torch" else None
            if not p:
                continue
            timing = f"{p['seconds'][str(PREDICT_LONG)]} − {p['seconds'][str(PREDICT_SHORT)]} s"
            if len(p.get("rounds", [])) > 1:
                timing += f" (rounds: {', '.join(str(r) for r in p['rounds'])} images/s)"
            table.append(
                [
                    f"{p['run']} ({label}, runtime={runtime}"
                    + (", stand-in weights)" if p.get("weights") == "stand-in" else ")"),
                    f"**{p['images_per_s']}**",
                    timing,
                    p["whole_call_images_per_s"],
                    fmt(ms, 1),
                    p["load"],
                ]
            )
    table.append(
        [
            "MediaPipe selfie (its own process)",
            "–",
            "–",
            "–",
            fmt(extra["ms_per_eg1800_photo"].get("mediapipe"), 1),
            "–",
        ]
    )
    header = ["configuration", "images/s (predict, 256²)", f"{PREDICT_LONG} vs {PREDICT_SHORT} photos"]
    lines += markdown_table([*header, "images/s whole call", "ms per EG1800 photo", "`uptime`"], table)
    lines += ["", "## Targets (issue 17)", "", *targets_markdown(goals, "{:.3f}")]
    lines += [
        "",
        f"![ours and MediaPipe on EG1800 test photos](portrait_segmentation{suffix}_compare.jpg)",
        "",
    ]
    return "\n".join(lines) + "\n"


# -- the predict path alone ---------------------------------------------------------------------------------
STAND_IN = ["data.train_size=8", "data.val_size=4", "trainer.max_epochs=1", "callbacks.image_logger=null"]


def timed_run(name: str, bench_dir: Path, **settings: Any) -> PredictConfig:
    """The configuration ``name`` ("<run>" or "<run> @<size>[ + flip]") with module ``settings``, on the
    run's folder when it finished here; otherwise on a stand-in: the same experiment fitted for one epoch on
    8 photos into ``<bench_dir>/stand_in/<run>`` (same net and settings, so the same computation)."""
    run = next(r for r in RUNS if r.name == name.split(" @")[0])
    run_dir = bench_dir / run.name
    if reusable(run_dir, True):
        return PredictConfig(name, run_dir, settings)
    stand_in_dir = bench_dir / "stand_in" / run.name
    say(f"{run.name}: no finished run here, timing a stand-in ({stand_in_dir})")
    run_experiment([f"experiment={run.experiment}", *run.overrides, *STAND_IN], stand_in_dir, True)
    return PredictConfig(name, stand_in_dir, settings, stand_in=True)


def speed_only(threads: int, rounds: int, predict_rounds: int) -> None:
    """Only the predict path (both runtimes) and the inference on one EG1800 photo of the committed
    configurations, timed again and written into the committed full results (quality rows, net timings and
    figures stay as they were measured)."""
    previous = previous_results("portrait_segmentation")
    if previous.get("mode") != "full":
        raise SystemExit("--speed-only updates full results: run `--full` once first")
    bench_dir = ROOT / "outputs" / "bench" / "portrait_segmentation"
    rows = previous["rows"]
    tuned = previous["predict_path"]["best"]["run"]  # "<run> @<size>[ + flip]", chosen on validation
    row = next(r for r in rows if r["method"] == tuned)
    configs = {
        "best": timed_run(
            tuned, bench_dir, inference_size=row["inference_size"], flip_average=row["flip_average"]
        ),
        "default_light": timed_run(previous["predict_path"]["default_light"]["run"], bench_dir),
    }
    extra: dict[str, Any] = {
        "mode": "full",
        "quality_machine": previous.get("quality_machine", previous["machine"]),
        "predict_command": f"python benchmarks/portrait_segmentation.py --speed-only --rounds {rounds} "
        f"--predict-rounds {predict_rounds} --predict-threads {threads}",
        "predict_machine": f"{machine()}, {load_avg()} at its start",
        "notes": previous["notes"],
        "predict_path": {},
        "ms_per_eg1800_photo": {"mediapipe": previous["ms_per_eg1800_photo"].get("mediapipe")},
    }
    items = test_items(configs["best"].run_dir, FIGURE_IMAGES)
    with tempfile.TemporaryDirectory() as tmp:
        predict_speed(configs, items, threads, rounds, Path(tmp), extra, predict_rounds)
    extra["targets"] = targets(rows, extra)
    command = previous["command"]
    text = markdown(rows, extra["targets"], extra, command)
    write_results("portrait_segmentation", command, rows, text, extra)


# -- main ----------------------------------------------------------------------------------------------------
def main() -> None:
    parser = benchmark_parser(__doc__, rounds="timed rounds (default: quick 3, full 15)")
    parser.add_argument("--train-only", action="store_true", help="only run the trainings, one after another")
    parser.add_argument("--threads", default="1,2", help="thread counts of the net timings (comma-separated)")
    parser.add_argument("--predict-threads", type=int, default=2, help="torch threads of the predict path")
    parser.add_argument("--mediapipe-python", type=Path, default=ROOT / ".venv-mediapipe" / "bin" / "python")
    parser.add_argument(
        "--predict-rounds", type=int, default=3, help="interleaved rounds of the predict path (the median)"
    )
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="only the predict path and per-photo inference, written into the committed full results",
    )
    args = parser.parse_args()
    register_resolvers()
    if args.speed_only:
        speed_only(args.predict_threads, args.rounds or 5, args.predict_rounds)
        return
    mode = "full" if args.full else "quick"
    suffix = "" if args.full else "_quick"
    command = f"python benchmarks/portrait_segmentation.py --{mode}"
    bench_dir = ROOT / "outputs" / "bench" / "portrait_segmentation" / ("" if args.full else "quick")

    rows: list[dict[str, Any]] = []
    finished: dict[str, Path] = {}
    minutes: dict[str, float] = {}
    for run in RUNS:
        run_dir = bench_dir / run.name
        if args.no_train and not reusable(run_dir, args.reuse):
            say(f"SKIPPED {run.name}: not finished (--no-train)")
            continue
        overrides = [f"experiment={run.experiment}", *run.overrides, *([] if args.full else QUICK)]
        if run.init_from:
            if run.init_from not in finished:
                say(f"SKIPPED {run.name}: it continues {run.init_from}, which has not finished")
                continue
            overrides.append(f"init_weights={finished_checkpoint(finished[run.init_from])}")
        try:
            result = run_experiment(overrides, run_dir, args.reuse)
        except RuntimeError as error:
            say(f"FAILED {run.name}: {error}")
            continue
        finished[run.name] = run_dir
        own = (result.get("fit_seconds") or 0) / 60  # a continued run counts its parent's minutes too
        minutes[run.name] = round(own + (minutes.get(run.init_from, 0.0) if run.init_from else 0.0), 1)
        say(f"{run.name}: finished")
        if args.train_only:
            continue
        cfg = run_config(run_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = sum(p.numel() for p in load_run(run_dir)[0].net.parameters())
        info = {
            **describe(cfg),
            "params": params,
            "val_iou": best_val_iou(run_dir),
            "train_minutes": minutes[run.name],
            "epochs": result.get("epochs"),
            "init_from": run.init_from,
            "checkpoint": result["tested_checkpoint"],
            "command": "python run.py "
            + " ".join([f"experiment={run.experiment}", *run.overrides])
            + (f" init_weights=<{run.init_from}'s tested checkpoint>" if run.init_from else ""),
        }
        rows += quality_rows(run.name, run_dir, info)
    if args.train_only or not finished:
        return

    # the best run on validation; its inference size and mirror averaging chosen on validation, then its own
    # stage=test with them
    best = max(finished, key=lambda name: best_val_iou(finished[name]) or 0.0)
    best_dir = finished[best]
    say(f"best run on validation: {best}; choosing its inference settings on validation")
    size, flip, candidates = choose_inference(best_dir)
    run = next(r for r in RUNS if r.name == best)
    tuned_dir = bench_dir / f"{best}_test_{size}{'_flip' if flip else ''}"
    test_overrides = [
        f"experiment={run.experiment}",
        *run.overrides,
        *([] if args.full else QUICK),
        "stage=test",
        f"ckpt_path={finished_checkpoint(best_dir)}",
        f"module.inference_size={size}",
        f"module.flip_average={str(flip).lower()}",
    ]
    run_experiment(test_overrides, tuned_dir, args.reuse)
    info = next(r for r in rows if r["method"] == best)
    info = {
        k: v
        for k, v in info.items()
        if k not in ("method", "dataset", "n", "metrics", "inference_size", "flip_average")
    }
    tuned = f"{best} @{size}{' + flip' if flip else ''}"
    rows += quality_rows(
        tuned, tuned_dir, {**info, "val_iou": candidates[tuned.split("@")[1]]}, "inference chosen on val"
    )
    notes = [
        f"`{tuned}`: {best}'s checkpoint at a short side of {size} px"
        + (" averaged with the mirror image" if flip else "")
        + ", chosen on validation IoU among "
        + ", ".join(f"{k} ({v:.4f})" for k, v in candidates.items())
        + "; its test numbers are that configuration's own `stage=test`.",
        "MediaPipe: the selfie model of the mediapipe 0.10.14 wheel (general, 256×256 input, its mask "
        "resized to the photo by MediaPipe), served from its own environment as the net of our test step, "
        "each photo at its own size (same pixels, metric code and resolution); TFLite, its own threads.",
    ]
    default_light = next((n for n in finished if n.startswith("pspnet_mnv2") and "os8" not in n), None)
    extra: dict[str, Any] = {"mode": mode, "notes": notes, "predict_path": {}, "ms_per_eg1800_photo": {}}
    modules = {"best": PredictConfig(tuned, best_dir, {"inference_size": size, "flip_average": flip})}
    if default_light:
        modules["default_light"] = PredictConfig(default_light, finished[default_light])
    peer = MediaPipeNet(args.mediapipe_python) if args.mediapipe_python.is_file() else None
    if peer is None:
        note = f"not run: {args.mediapipe_python} does not exist (see benchmarks/mediapipe_selfie.py)"
        rows.append(
            {"method": "mediapipe_selfie", "dataset": TEST_SETS["eg1800"], "metrics": {}, "note": note}
        )
    else:
        say("MediaPipe on the test sets")
        peer_rows, extra["ms_per_eg1800_photo"]["mediapipe"] = mediapipe_rows(best_dir, peer)
        rows += peer_rows
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        say("speed")
        nets: dict[str, nn.Module] = {}
        for run_dir in finished.values():
            net_cfg = run_config(run_dir).module.net
            stride = f" (stride {net_cfg.output_stride})" if net_cfg.get("output_stride") else ""
            nets.setdefault(net_cfg._target_.rsplit(".", 1)[1] + stride, load_module(run_dir).net)
        rounds = args.rounds or (15 if args.full else 3)
        rows += speed_rows(nets, [int(t) for t in args.threads.split(",")], rounds, workdir)
        items = test_items(best_dir, FIGURE_IMAGES)
        loaded = predict_speed(
            modules, items, args.predict_threads, rounds, workdir, extra, args.predict_rounds
        )
        figures(loaded["best"], items, peer, suffix)
    if peer is not None:
        peer.close()
    rows += [{**row, "source": "paper"} for row in PUBLISHED]
    goals = targets(rows, extra)
    extra["targets"] = goals
    text = markdown(rows, goals, extra, command)
    write_results(f"portrait_segmentation{suffix}", command, rows, text, extra)


if __name__ == "__main__":
    main()
