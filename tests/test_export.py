"""ONNX export of a run's network (framework/export.py, scripts/export_onnx.py), checked with ONNX Runtime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from framework.errors import UserError
from framework.export import check_onnx, export_checkpoint, load_net
from tests.conftest import ROOT, compose_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def fake_run(run_dir: Path, *overrides: str) -> Path:
    """A run dir as `run.py` leaves it (config_resolved.yaml + checkpoints/best.ckpt), untrained weights."""
    cfg = compose_config(["task=super_resolution", "data.scale=2", *overrides], run_dir)
    (run_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(0)
    module = hydra.utils.instantiate(cfg.module)
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": module.state_dict(), "imaging_lab": {"task": "super_resolution"}}, ckpt)
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
        timeout=120,
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
