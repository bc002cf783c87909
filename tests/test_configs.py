"""Every task preset, model and loss composes; wrong choices fail at once with the valid ones named."""

from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from framework.cli import check_group_overrides, group_choices
from framework.errors import UserError
from framework.validate import validate_config
from tests.conftest import CONF_DIR, compose_config, run_cli, task_names

# Which task each model / loss config belongs to: a new config must be added here (and so get tested).
MODEL_TASK = {
    "dad": "phase_retrieval",
    "hio": "phase_retrieval",
    "er": "phase_retrieval",
    "raar": "phase_retrieval",
    "dad_ae": "phase_retrieval",
    "dad_fourier_branch": "phase_retrieval",
    "conv_only": "phase_retrieval",
    "dad_refined": "phase_retrieval",
    "espcn": "super_resolution",
    "espcn_int8_qat": "super_resolution",
    "espcn_paper": "super_resolution",
    "edsr": "super_resolution",
    "bicubic": "super_resolution",
    "deblock_espcn": "super_resolution",
}
# few iterations for the classical algorithms; the refined net without its trained checkpoint
MODEL_OVERRIDES = {
    "er": ["model.iterations=2"],
    "hio": ["model.iterations=2"],
    "raar": ["model.iterations=2"],
    "dad_refined": ["model.iterations=2", "model.checkpoint=null"],
}
LOSS_TASK = {
    "rot180_l2": "phase_retrieval",
    "rot180_l1": "phase_retrieval",
    "mse": "super_resolution",
    "mse_vgg": "super_resolution",
}


def example_input(cfg) -> torch.Tensor:
    """A measurement / low-resolution batch of the shape the task feeds its net."""
    if cfg.task_name == "phase_retrieval":
        side = cfg.data.image_size + 2 * cfg.data.pad
        return torch.rand(2, 1, side, side)
    return torch.rand(2, 3, 12, 12)


@pytest.mark.parametrize("task", task_names())
def test_task_preset_composes_and_resolves(task, tmp_path):
    cfg = compose_config([f"task={task}"], tmp_path)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["task_name"] == task
    assert container["module"]["_target_"].startswith("lightning_modules.")
    assert container["monitor"]["metric"].startswith("val/")


def test_every_model_and_loss_config_is_listed():
    assert set(group_choices(CONF_DIR, "model")) == set(MODEL_TASK)
    assert set(group_choices(CONF_DIR, "loss")) == set(LOSS_TASK)


@pytest.mark.parametrize("model", sorted(MODEL_TASK))
def test_every_model_builds_and_runs(model, tmp_path):
    cfg = compose_config(
        [f"task={MODEL_TASK[model]}", f"model={model}", *MODEL_OVERRIDES.get(model, [])], tmp_path
    )
    net = hydra.utils.instantiate(cfg.model).eval()
    x = example_input(cfg)
    with torch.no_grad():
        out = net(x)
    if cfg.task_name == "phase_retrieval":
        assert out.shape == (2, 1, cfg.data.image_size, cfg.data.image_size)
    else:
        assert out.shape == (2, 3, 12 * cfg.data.scale, 12 * cfg.data.scale)


@pytest.mark.parametrize("loss", sorted(LOSS_TASK))
def test_every_loss_builds_and_is_zero_on_identical_images(loss, tmp_path):
    cfg = compose_config([f"task={LOSS_TASK[loss]}", f"loss={loss}"], tmp_path)
    criterion = hydra.utils.instantiate(cfg.loss)
    x = torch.rand(2, 1 if cfg.task_name == "phase_retrieval" else 3, 32, 32)
    assert criterion(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert criterion(x, torch.rand_like(x)).item() > 0


@pytest.mark.parametrize(
    "group", ["trainer", "logger", "callbacks", "debug", "data", "augmentation", "protocol", "experiment"]
)
def test_every_choice_of_the_other_groups_composes(group, tmp_path):
    for choice in group_choices(CONF_DIR, group):
        task = "super_resolution" if choice.startswith("sr_") else "phase_retrieval"
        cfg = compose_config([f"task={task}", f"{group}={choice}"], tmp_path)
        OmegaConf.to_container(cfg, resolve=True)


def test_cli_check_names_valid_choices():
    with pytest.raises(UserError, match=r"valid model choices: .*dad.*hio"):
        check_group_overrides(["model=dadd"], CONF_DIR)
    with pytest.raises(UserError, match="model=hioo"):
        check_group_overrides(["model=dad,hioo"], CONF_DIR)
    with pytest.raises(UserError, match=r"model@model.net=dadd is not a config; valid model choices"):
        check_group_overrides(["model@model.net=dadd"], CONF_DIR)
    check_group_overrides(
        ["model=dad,hio", "model@model.net=dad_ae", "trainer.max_epochs=3", "experiment=null"], CONF_DIR
    )
    check_group_overrides(["hydra/launcher=basic"], CONF_DIR)


def test_wrong_model_fails_at_once_with_one_line():
    result = run_cli("model=dadd")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "dadd" in lines[0] and "dad, " in lines[0] and "hio" in lines[0]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=abc", r"data.batch_size='abc' has the wrong type: expected int"),
        ("+trainer.max_epoch=3", r"did you mean trainer.max_epochs"),
        ("module.optimizer.lr=-1", r"module.optimizer.lr=-1 is impossible: it must be > 0"),
        ("model.levels=0", r"levels=0 is impossible"),
    ],
)
def test_config_is_validated_against_constructors(override, message, tmp_path):
    cfg = compose_config([override], tmp_path)
    with pytest.raises(UserError, match=message):
        validate_config(cfg)


def test_every_preset_passes_validation(tmp_path):
    for task in task_names():
        validate_config(compose_config([f"task={task}"], tmp_path))
    for experiment in group_choices(CONF_DIR, "experiment"):
        extra = ["model.checkpoint=x.ckpt"] if "refine" in experiment else []
        validate_config(compose_config([f"experiment={experiment}", *extra], tmp_path))


def test_misspelt_key_fails_in_one_line_before_anything_runs():
    result = run_cli("trainer.max_epoch=3")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: trainer.max_epoch is not a config key: check its spelling")


@pytest.mark.parametrize(
    "data, protocol, size, pad",
    [
        ("fashion_mnist", "prdad", 32, 4),
        ("mnist", "prdad", 32, 8),
        ("eg1800_faces", "prdad", 64, 16),
        ("fashion_mnist", "uelwer", 28, 0),
    ],
)
def test_protocol_keeps_each_data_sets_size_and_padding(data, protocol, size, pad, tmp_path):
    cfg = compose_config(["task=phase_retrieval", f"data={data}", f"protocol={protocol}"], tmp_path)
    assert (cfg.data.image_size, cfg.data.pad, cfg.model.image_size) == (size, pad, size)
