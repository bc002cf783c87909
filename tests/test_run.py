"""End to end through `framework.runner.run` / `run.py`: fit, test from a checkpoint, predict, sweeps."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from datamodules.io import save_image
from framework.checkpoint_io import load_net_weights
from framework.errors import UserError
from framework.runner import run
from models.espcn import espcn
from tests.conftest import run_cli, task_names


def read_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


@pytest.mark.parametrize("task", task_names())
def test_fast_dev_run_of_every_task(task, make_cfg, tmp_path):
    cfg = make_cfg(f"task={task}", "debug=fast_dev_run")
    run(cfg)
    metrics = read_metrics(tmp_path)
    assert any(name.startswith("test") for name in metrics)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert (tmp_path / "metrics.md").read_text().startswith("# ")
    assert (tmp_path / "config_resolved.yaml").is_file()
    assert (tmp_path / "images" / "test.png").is_file()


def test_fit_then_test_from_checkpoint_reproduces_metrics(make_cfg, tmp_path):
    fit_dir, test_dir = tmp_path / "fit", tmp_path / "test"
    run(make_cfg("trainer.max_epochs=2", output_dir=fit_dir))
    fit_metrics = read_metrics(fit_dir)
    best = json.loads((fit_dir / "metrics.json").read_text())["checkpoints"]["best"]
    assert Path(best).is_file() and (fit_dir / "checkpoints" / "last.ckpt").is_file()
    assert fit_metrics["val/ssim_dr2"] > 0  # trained, monitored, returned

    value = run(make_cfg("stage=test", f"ckpt_path={best}", "optimized_metric=test/mse", output_dir=test_dir))
    test_metrics = read_metrics(test_dir)
    for name in ("test/mse", "test/mae", "test/ssim", "test/ssim_dr2", "test/psnr"):
        assert test_metrics[name] == pytest.approx(fit_metrics[name], rel=1e-5, abs=1e-7), name
    assert value == pytest.approx(test_metrics["test/mse"])

    # the same checkpoint predicts a folder of the user's images
    images = tmp_path / "my_images"
    for i in range(3):
        save_image(torch.rand(1, 20 + i, 30), images / f"photo{i}.png")
    out = tmp_path / "predictions"
    run(
        make_cfg(
            "stage=predict",
            f"ckpt_path={best}",
            f"input={images}",
            f"output={out}",
            output_dir=tmp_path / "predict",
        )
    )
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([f"photo{i}{s}.png" for i in range(3) for s in ("", "_vs_truth")])


def test_classical_baseline_needs_no_training(make_cfg, tmp_path):
    value = run(
        make_cfg(
            "model=hio",
            "model.iterations=30",
            "model.restarts=1",
            "data.test_size=16",
            "optimized_metric=test/ssim_dr2",
        )
    )
    metrics = read_metrics(tmp_path)
    assert set(metrics) >= {"test/mse", "test/ssim_dr2"}
    assert not any(name.startswith("train") for name in metrics)
    assert value == pytest.approx(metrics["test/ssim_dr2"])


def test_stage_test_of_trainable_model_needs_a_checkpoint(make_cfg):
    with pytest.raises(UserError, match="ckpt_path"):
        run(make_cfg("stage=test"))


def test_missing_checkpoint_is_a_clear_error(make_cfg, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        run(make_cfg("stage=test", f"ckpt_path={tmp_path}/nope.ckpt"))


def test_missing_data_set_says_how_to_get_it(make_cfg, tmp_path):
    with pytest.raises(UserError, match=r"KMNIST is not in .* could not be downloaded"):
        run(make_cfg("data=kmnist", f"data.root={tmp_path}/empty", "data.download=false"))


def test_predict_without_input_is_a_clear_error(make_cfg):
    with pytest.raises(UserError, match="input="):
        run(make_cfg("stage=predict", "model=er", "model.iterations=2"))


def test_checkpoint_of_another_task_is_refused(make_cfg, tmp_path):
    run(
        make_cfg(
            "task=super_resolution",
            "trainer.max_epochs=1",
            "trainer.limit_val_batches=1",
            "callbacks.early_stopping=null",
            "trainer.limit_test_batches=1",
            output_dir=tmp_path / "sr",
        )
    )
    ckpt = tmp_path / "sr" / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match="saved by task=super_resolution"):
        run(make_cfg("stage=test", f"ckpt_path={ckpt}", output_dir=tmp_path / "pr"))


def test_two_job_multirun(tmp_path):
    result = run_cli(
        "-m",
        "stage=test",
        "model=er,hio",
        "++model.iterations=5",
        "++model.restarts=1",
        "data.test_size=8",
        "logger=csv",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metric_files = sorted(tmp_path.glob("*/metrics.json"))
    assert len(metric_files) == 2
    models = {json.loads(p.read_text())["model"] for p in metric_files}
    assert models == {"algorithms.phase_retrieval.ClassicalPhaseRetrieval"}


def test_wandb_logger_runs_offline(tmp_path):
    result = run_cli(
        "stage=test",
        "model=er",
        "model.iterations=2",
        "model.restarts=1",
        "data.test_size=8",
        "logger=wandb",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline W&B run dir"
    assert (tmp_path / "metrics.json").is_file()


def test_init_weights_starts_a_fit_from_a_trained_net(make_cfg, tmp_path):
    sr = ("task=super_resolution", "callbacks.image_logger=null")
    run(make_cfg(*sr, output_dir=tmp_path / "first"))
    first = json.loads((tmp_path / "first" / "metrics.json").read_text())
    # learning rate 0, no schedule: the fine-tuned net keeps the loaded weights and tests like the first
    run(
        make_cfg(
            *sr,
            f"init_weights={first['checkpoints']['best']}",
            "module.optimizer.lr=0",
            "module.scheduler=null",
            output_dir=tmp_path / "second",
        )
    )
    assert read_metrics(tmp_path / "second")["test/Set5/psnr_y"] == pytest.approx(
        first["metrics"]["test/Set5/psnr_y"], abs=1e-6
    )
    with pytest.raises(UserError, match=r"^init_weights=.* does not fit"):
        run(make_cfg(*sr, "model=espcn_paper", f"init_weights={first['checkpoints']['best']}"))


def test_init_weights_not_strict_loads_the_tensors_that_fit(tmp_path, caplog):
    """A ×4 ESPCN's body starts a ×3 one: the two 5×5 convs are loaded, the sub-pixel conv is not."""
    x4, x3 = espcn(4), espcn(3)
    torch.save({"state_dict": {f"net.{k}": v for k, v in x4.state_dict().items()}}, tmp_path / "x4.ckpt")
    before = {k: v.clone() for k, v in x3.state_dict().items()}
    with caplog.at_level(logging.WARNING):
        load_net_weights(x3, tmp_path / "x4.ckpt", key="init_weights", strict=False)
    loaded = x3.state_dict()
    for name, tensor in x4.state_dict().items():
        if name.startswith("body.4."):  # the last conv: 3·16 channels against 3·9
            assert torch.equal(loaded[name], before[name])
        else:
            assert torch.equal(loaded[name], tensor)
    assert "2 of 6 tensors do not fit" in caplog.text and "body.4.weight" in caplog.text
    with pytest.raises(UserError, match=r"init_weights_strict=false"):
        load_net_weights(
            espcn(3), tmp_path / "x4.ckpt", key="init_weights", strict_switch="init_weights_strict"
        )
    with pytest.raises(UserError, match=r"has no tensor that fits"):
        load_net_weights(torch.nn.Linear(2, 2), tmp_path / "x4.ckpt", key="init_weights", strict=False)
