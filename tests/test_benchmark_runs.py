"""The benchmark harness (benchmarks/harness/): a finished run is reused, an interrupted one is not (it
resumes), a partial run merges its rows into the previous results; quality figures come from the task's own
test step; speed variants compute what the net computes and are timed in the same rounds."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from datamodules.super_resolution import load_folders
from metrics.super_resolution import sr_metrics
from models.espcn import BicubicUpsampler
from operators.degradation import make_lr, mod_crop
from tests.conftest import ROOT, SHARED_DATA, compose_config

sys.path.insert(0, str(ROOT / "benchmarks"))
import harness.quality
from harness import (
    PRECISIONS,
    RunMetrics,
    benchmark_parser,
    cached_run_metrics,
    conv_gflop,
    load_net,
    markdown_table,
    merge_rows,
    precision_variants,
    read_test_metrics,
    reusable,
    run_metrics,
    run_test,
    select_best,
    split_test_metrics,
    target,
    targets_markdown,
    time_variants,
)

SR_DATA = SHARED_DATA / "sr"


@pytest.mark.parametrize(
    "metrics, reuse, expected",
    [
        (None, True, False),  # never ran
        ({"interrupted": False}, True, True),
        ({"interrupted": True}, True, False),  # killed part-way: resume it, never report it
        ({"interrupted": False}, False, False),  # without --reuse everything reruns
    ],
)
def test_only_finished_runs_are_reused(tmp_path, metrics, reuse, expected):
    if metrics is not None:
        (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert reusable(tmp_path, reuse) is expected


def test_a_partial_run_replaces_its_rows_and_keeps_the_others():
    previous = [
        {"method": "hio", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.12}},
        {"method": "dad", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.02}},
        {"method": "PR-DAD (paper)", "dataset": "mnist", "source": "paper", "metrics": {"mse": 0.03}},
    ]
    fresh = [
        {"method": "dad", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.01}},
        {"method": "dad_ae", "dataset": "mnist", "protocol": "prdad", "metrics": {"mse": 0.015}},
        {"method": "hio", "dataset": "faces", "protocol": "prdad", "metrics": {"mse": 0.02}},
    ]
    merged = merge_rows(previous, fresh)
    assert [(row["method"], row["metrics"]["mse"]) for row in merged] == [
        ("hio", 0.12),
        ("hio", 0.02),  # new: after its method's rows
        ("dad", 0.01),  # replaced in place
        ("dad_ae", 0.015),  # a new method: last, before the published rows
        ("PR-DAD (paper)", 0.03),
    ]
    assert merge_rows([], fresh) == fresh


# -- the harness's quality figures come from the task's own test step -------------------------------------
def finished_sr_run(run_dir: Path, *overrides: str) -> Path:
    """A finished super-resolution ×2 run as `run.py` leaves it: config, untrained weights, metrics.json (in
    fp32, as the tests' hand computations)."""
    sr = ["task=super_resolution", "data.scale=2", "data.crop_size=48", "trainer.precision=32-true"]
    cfg = compose_config([*sr, *overrides], run_dir)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(0)
    module = hydra.utils.instantiate(cfg.module)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": module.state_dict()}, ckpt)
    metrics = {"test/Set5/psnr_y": 30.0, "test/Set14/psnr_y": 27.0, "test/Set5/loss": 0.1, "val/psnr_y": 1.0}
    results = {"metrics": metrics, "tested_checkpoint": str(ckpt), "n_test": 19}
    (run_dir / "metrics.json").write_text(json.dumps(results))
    return ckpt


def test_test_metrics_are_split_by_test_set():
    flat = {"test/Set5/psnr_y": 1.0, "test/mse": 2.0, "test/Set5/loss": 3.0, "val/mse": 4.0, "train/loss": 5}
    by_set = split_test_metrics(flat)
    assert by_set == {"Set5": {"psnr_y": 1.0, "loss": 3.0}, "": {"mse": 2.0}}
    assert RunMetrics(by_set, {}).of("Set5") == {"psnr_y": 1.0}  # the loss is not a figure


def test_a_run_s_own_metrics_are_read_with_each_test_set_s_size(tmp_path):
    finished_sr_run(tmp_path)
    result = run_metrics(tmp_path)
    assert result.of("Set5") == {"psnr_y": 30.0} and result.of("Set14") == {"psnr_y": 27.0}
    assert result.n == {"Set5": 5, "Set14": 14}  # from the DataModule: metrics.json only holds the total
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"test/mse": 0.5}, "n_test": 500}))
    assert read_test_metrics(tmp_path) == RunMetrics({"": {"mse": 0.5}}, {"": 500})


def test_the_test_step_runs_again_with_fewer_images_other_inputs_or_another_net(tmp_path, single_thread):
    ckpt = finished_sr_run(tmp_path)
    first = run_test(tmp_path, limit_test_batches=1)
    assert first.n == {"Set5": 1, "Set14": 1}
    # by hand: the first Set5 image, mod-cropped, made LR and upscaled as the task does, scored as it scores
    net, _ = load_net(ckpt)
    hr = mod_crop(load_folders([str(SR_DATA / "Set5")])[0], 2).float().div(255).unsqueeze(0)
    with torch.no_grad():
        expected = sr_metrics(net(make_lr(hr, 2)), hr, crop_border=2)
    for name, value in expected.items():
        assert first.of("Set5")[name] == pytest.approx(float(value), abs=1e-4)
    bicubic = run_test(tmp_path, net=BicubicUpsampler(2), limit_test_batches=1)
    assert bicubic.of("Set5")["psnr_y"] > first.of("Set5")["psnr_y"] + 3  # an untrained net loses to bicubic
    jpeg = run_test(tmp_path, {"module.jpeg_quality_eval": 30}, BicubicUpsampler(2), limit_test_batches=1)
    assert jpeg.of("Set5")["psnr_y"] < bicubic.of("Set5")["psnr_y"] - 0.5  # JPEG-q30 inputs lose detail


class AutocastRecorder(torch.nn.Module):
    """Bicubic ×2 that records whether it ran under CPU autocast."""

    def __init__(self) -> None:
        super().__init__()
        self.net, self.autocast = BicubicUpsampler(2), []

    def forward(self, x):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return self.net(x)


def test_the_test_step_runs_at_the_run_s_own_precision_unless_told(tmp_path, single_thread):
    finished_sr_run(tmp_path, "trainer.precision=bf16-mixed")
    own, fp32 = AutocastRecorder(), AutocastRecorder()
    run_test(tmp_path, net=own, limit_test_batches=1)
    run_metrics(tmp_path, net=fp32, limit_test_batches=1, precision="32-true")
    assert own.autocast == [True, True] and fp32.autocast == [False, False]  # one image of each test set


# -- speed ---------------------------------------------------------------------------------------------
def test_precision_variants_compute_the_same_thing(tmp_path, single_thread):
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    x = torch.rand(1, 3, 16, 24)
    variants = precision_variants(net, x, tmp_path, threads=1)
    assert list(variants) == list(PRECISIONS)
    with torch.no_grad():
        reference = net(x)
        for name, variant in variants.items():
            tolerance = 0.05 if "bf16" in name else 1e-5
            torch.testing.assert_close(variant(x), reference, atol=tolerance, rtol=0, msg=name)
    with pytest.raises(ValueError, match="unknown variant"):
        precision_variants(net, x, which=["int3"])


def test_variants_are_timed_in_the_same_rounds():
    calls = []
    slow = torch.nn.Identity()
    slow.forward = lambda x: calls.append("slow") or time.sleep(0.01) or x  # type: ignore[method-assign]
    fast = torch.nn.Identity()
    fast.forward = lambda x: calls.append("fast") or x  # type: ignore[method-assign]
    timed = time_variants({"toy": ({"slow": slow, "fast": fast}, torch.zeros(4, 1, 2, 2))}, rounds=3)
    assert calls == ["slow", "fast"] * 4  # a warm-up call each, then interleaved rounds
    assert [(t.model, t.variant) for t in timed] == [("toy", "slow"), ("toy", "fast")]
    assert timed[0].seconds >= 0.01 > timed[1].seconds
    assert timed[0].ms_per_image == pytest.approx(1000 * timed[0].seconds / 4)
    assert timed[0].fps == pytest.approx(4 / timed[0].seconds)


def test_conv_gflop_counts_multiply_adds_twice():
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    assert conv_gflop(conv, torch.zeros(1, 4, 10, 10)) == pytest.approx(2 * 6 * 10 * 10 * 4 * 9 / 1e9)


# -- tables --------------------------------------------------------------------------------------------
def test_targets_and_tables_in_markdown():
    goals = [target("psnr", 31.0, 30.9), target("loss", 0.2, 0.1, higher=False), target("never", None, 1.0)]
    assert [goal["met"] for goal in goals] == [True, False, None]
    assert targets_markdown(goals) == [
        "| target | value | met |",
        "|---|---|---|",
        "| psnr | 31.00 | yes |",
        "| loss | 0.20 | **no** |",
        "| never | – | not run |",
    ]
    quick = target("ssim ≥ 0.86", 0.9, 0.86, measured=False, note="quick mode: n = 300")
    assert quick["met"] is None and quick["value"] == 0.9  # shown, not judged: other conditions
    assert targets_markdown([goals[0], quick], unmeasured="not measured") == [
        "| target | value | met | note |",
        "|---|---|---|---|",
        "| psnr | 31.00 | yes |  |",
        "| ssim ≥ 0.86 | 0.90 | not measured | quick mode: n = 300 |",
    ]
    assert markdown_table(["a", "b"], [[1, "x"]]) == ["| a | b |", "|---|---|", "| 1 | x |"]


# -- selection on validation ---------------------------------------------------------------------------
def test_the_headline_is_the_best_validation_score_and_says_so():
    chosen = select_best({"a": 0.80, "b": 0.86, "c": 0.86}, "ssim_paper", n=2000)
    assert (chosen.name, chosen.value, chosen.runner_up) == ("b", 0.86, "c")  # a tie goes to the first
    assert "`b`, chosen on validation (ssim_paper 0.8600 on 2000 validation images" in chosen.describe("best")
    assert select_best({"a": 0.01, "b": 0.02}, "mse", n=10, higher_is_better=False).name == "a"
    assert select_best({}, "mse", n=10) is None


def test_metrics_with_overrides_are_asked_once_per_finished_run(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text(json.dumps({"tested_checkpoint": "a.ckpt"}))
    calls = []

    def fake_run_metrics(run_dir, overrides):
        calls.append(dict(overrides))
        return RunMetrics({"": {"ssim_paper": 0.5 + len(calls)}}, {"": 300})

    monkeypatch.setattr(harness.quality, "run_metrics", fake_run_metrics)
    val = {"data.test_split": "val", "data.test_size": 300}
    assert cached_run_metrics(tmp_path, val).of() == {"ssim_paper": 1.5}
    assert cached_run_metrics(tmp_path, val) == RunMetrics({"": {"ssim_paper": 1.5}}, {"": 300})
    assert cached_run_metrics(tmp_path, {"data.test_size": 10}).of() == {"ssim_paper": 2.5}
    assert len(calls) == 2  # the second call came from the cache
    (tmp_path / "metrics.json").write_text(json.dumps({"tested_checkpoint": "b.ckpt"}))  # retrained
    assert cached_run_metrics(tmp_path, val).of() == {"ssim_paper": 3.5}


def test_benchmark_parser_shares_the_modes_and_adds_only_what_a_script_supports():
    parser = benchmark_parser("doc", only="methods")
    args = parser.parse_args(["--full", "--reuse", "--only", "a,b"])
    assert (args.full, args.quick, args.reuse, args.no_train, args.only) == (True, False, True, False, "a,b")
    with pytest.raises(SystemExit):
        parser.parse_args(["--full", "--quick"])  # one mode at a time
    with pytest.raises(SystemExit):
        benchmark_parser("doc").parse_args(["--only", "a"])  # a script without partial reruns refuses it
    assert benchmark_parser("doc", rounds="r").parse_args(["--rounds", "3"]).rounds == 3
