"""ONNX export of a run's network (framework/export.py, scripts/export_onnx.py), checked with ONNX Runtime;
the example input comes from the task, so the export itself knows no task."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from framework.errors import UserError
from framework.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    OnnxNet,
    check_onnx,
    export_checkpoint,
    export_net,
    load_net,
    load_run,
)
from tests.conftest import ROOT, compose_config, smoke

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def fake_run(run_dir: Path, *overrides: str, task: str = "super_resolution") -> Path:
    """A run dir as `run.py` leaves it (config_resolved.yaml + checkpoints/best.ckpt), untrained weights."""
    task_overrides = ["data.scale=2"] if task == "super_resolution" else smoke(task)["overrides"]
    cfg = compose_config([f"task={task}", *task_overrides, *overrides], run_dir)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(0)
    module = hydra.utils.instantiate(cfg.module)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": module.state_dict(), "imaging_lab": {"task": task}}, ckpt)
    return ckpt


def test_checkpoint_net_loads_with_its_weights(tmp_path):
    ckpt = fake_run(tmp_path)
    net, cfg = load_net(ckpt)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    torch.testing.assert_close(net.body[0].weight, state["net.body.0.weight"])
    assert cfg.module.net._target_ == "models.espcn.espcn" and not net.training


def test_export_matches_torch_for_any_size(tmp_path):
    ckpt = fake_run(tmp_path)
    path, diff = export_checkpoint(ckpt)
    assert path == ckpt.with_suffix(".onnx") and path.is_file()
    assert diff < 1e-4
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(path)).graph
    assert [graph.input[0].name, graph.output[0].name] == [INPUT_NAME, OUTPUT_NAME] == ["input", "output"]
    net, _ = load_net(ckpt)
    for shape in ((1, 3, 17, 40), (2, 3, 64, 33)):  # dynamic batch, height and width
        assert check_onnx(path, net, torch.rand(shape)) < 1e-4


def test_script_exports_the_paper_net_and_prints_the_path(tmp_path):
    ckpt = fake_run(tmp_path, "model=espcn_paper")
    out = tmp_path / "paper.onnx"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "export_onnx.py"), str(ckpt), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,  # a few seconds idle; minutes when the 2 shared cores are busy
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == str(out) and out.is_file()


def test_missing_run_config_is_a_clear_error(tmp_path):
    ckpt = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}}, ckpt)
    with pytest.raises(UserError, match=r"config_resolved\.yaml"):
        load_net(ckpt)


def test_a_quantisation_aware_run_exports_its_int8_model(tmp_path):
    ckpt = fake_run(tmp_path, "model=espcn_int8_qat")
    with pytest.raises(UserError, match="train the net"):  # no activation ranges before training
        export_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)
    for key, value in state["state_dict"].items():  # ranges as a training would have left them
        if "output_quants" in key:
            value.fill_({"low": -2.0, "high": 2.0, "initialized": True}[key.rsplit(".", 1)[1]])
    torch.save(state, ckpt)
    path, diff = export_checkpoint(ckpt)
    onnx = pytest.importorskip("onnx")
    assert "QuantizeLinear" in {node.op_type for node in onnx.load(str(path)).graph.node}
    assert diff < 1.5 * 4 / 255  # 1.5 output steps of the range [-2, 2]


def test_a_run_dir_loads_its_tested_checkpoint(tmp_path):
    ckpt = fake_run(tmp_path)
    (tmp_path / "metrics.json").write_text(f'{{"tested_checkpoint": "{ckpt}"}}')
    module, _ = load_run(tmp_path)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    torch.testing.assert_close(module.net.body[0].weight, state["net.body.0.weight"])
    assert module.loss is None and not module.training  # the loss is not built to run the net
    assert module.example_input(1).shape == (1, 3, 12, 12)  # the task's LR input: 12·2 HR pixels / 2


def test_a_fixed_size_net_of_another_task_exports_from_its_example_input(tmp_path):
    """Phase retrieval's DAD net takes only its padded magnitude size: the export keeps that size and is
    checked on it (a batch of 3), traced on the task's example input."""
    ckpt = fake_run(tmp_path, task="phase_retrieval")
    path, diff = export_checkpoint(ckpt)
    assert diff < 1e-4
    module, _ = load_run(ckpt)
    y = module.example_input(3)
    with torch.no_grad():
        torch.testing.assert_close(OnnxNet(path)(y), module.net(y), atol=1e-4, rtol=1e-4)


def test_a_net_with_its_own_export_exports_itself(tmp_path):
    class SelfExporting(torch.nn.Identity):
        def export_onnx(self, path, example):
            self.called_with = example.shape
            Path(path).write_text("mine")
            return Path(path)

    net = SelfExporting()
    path = export_net(net, tmp_path / "x.onnx", torch.zeros(1, 2, 3, 4))
    assert path.read_text() == "mine" and net.called_with == (1, 2, 3, 4)


def test_the_export_names_no_task():
    source = (ROOT / "framework" / "export.py").read_text()
    tasks = r"phase_retrieval|super_resolution|style_transfer|portrait|auto_correction"
    assert not re.findall(rf"espcn|prdad|edsr|pspnet|{tasks}|lr|sr\b", source, flags=re.IGNORECASE)
