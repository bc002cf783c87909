"""The speed tools: the step timer's figures in a run's metrics.json, the `compile` switch, the bare loop the
overhead / data / precision benchmarks compare with, and `make bench-gpu`'s refusal without a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from framework.runner import build, run
from tests.conftest import ROOT, task_names

sys.path.insert(0, str(ROOT / "benchmarks"))
from harness.loops import SKIP, BareLoop


def test_a_fit_reports_its_step_time_and_start_up(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGING_LAB_LAUNCHED_AT", repr(time.time() - 100.0))  # launched 100 s ago
    run(make_cfg("trainer.limit_train_batches=6", "callbacks.step_timer.skip=1", output_dir=tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert 0.0 < metrics["perf/train_step_ms"] < 60_000.0
    assert 100.0 <= metrics["perf/startup_s"] < 400.0
    assert "IMAGING_LAB_LAUNCHED_AT" not in os.environ  # a multirun's next job does not report it again


def test_compile_switch_compiles_the_net_in_place(make_cfg):
    _, module, _, _ = build(make_cfg("compile=true"))
    keys = set(module.state_dict())
    assert module.net._compiled_call_impl is not None  # nn.Module.compile: compiled on its first call
    assert not any("_orig_mod" in key for key in keys)  # checkpoints keep their keys
    _, plain, _, _ = build(make_cfg())
    assert plain.net._compiled_call_impl is None and set(plain.state_dict()) == keys


@pytest.mark.parametrize("task", task_names())
def test_the_bare_loop_trains_the_task_module(task, make_cfg, single_thread):
    cfg = make_cfg(f"task={task}")
    loop = BareLoop(cfg, steps=1, device=torch.device("cpu"))
    assert len(loop.batches) == 1 + SKIP + 1
    before = [p.detach().clone() for p in loop.module.parameters() if p.requires_grad]
    assert loop.ms_per_step() > 0.0
    after = [p for p in loop.module.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # the optimiser stepped


@pytest.mark.parametrize("task", task_names())
def test_channels_last_switch_keeps_the_function_and_runs_the_convolutions_in_it(
    task, make_cfg, single_thread
):
    cfg = make_cfg(f"task={task}")
    if "channels_last" not in cfg.module:
        pytest.skip(f"{task} has no module.channels_last switch")
    torch.manual_seed(0)
    _, last, _, _ = build(make_cfg(f"task={task}", "module.channels_last=true"))
    _, plain, _, _ = build(make_cfg(f"task={task}", "module.channels_last=false"))
    plain.load_state_dict(last.state_dict())
    convs = [m.weight for m in last.net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size > (1, 1)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    last.eval(), plain.eval()
    inputs, _ = plain.inputs_and_target(plain.example_batch())
    with torch.no_grad():
        torch.testing.assert_close(last(inputs), plain(inputs), rtol=1e-4, atol=1e-5)


def test_the_bare_loop_on_example_batches_has_the_data_batch_size(make_cfg, single_thread):
    cfg = make_cfg("task=super_resolution")
    loop = BareLoop(cfg, steps=1, device=torch.device("cpu"), synthetic=True, precision="bf16-mixed")
    assert loop.batches[0]["target"].shape[0] == int(cfg.data.batch_size)
    assert loop.ms_per_step() > 0.0


def test_bench_gpu_says_what_it_needs_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu.py"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: no CUDA device")
