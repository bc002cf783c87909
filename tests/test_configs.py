"""Every task preset and every config composes; each config belongs to one task, which tests it; wrong
choices and values fail at once in one line. Tasks and their configs are discovered from ``conf/task/*.yaml``
(its ``smoke`` block): nothing here names a task."""

from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from framework.cli import check_group_overrides, group_choices
from framework.errors import UserError
from framework.runner import instantiate
from framework.validate import validate_config
from tests.conftest import CONF_DIR, claimed, compose_config, run_cli, smoke, task_names

CLAIMED_GROUPS = ("model", "loss", "data", "protocol", "experiment")


@pytest.mark.parametrize("task", task_names())
def test_task_preset_composes_resolves_and_validates(task, tmp_path):
    cfg = compose_config([f"task={task}"], tmp_path)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert container["task_name"] == task
    assert container["module"]["_target_"]
    assert container["monitor"]["metric"].startswith("val/")
    assert smoke(task)["overrides"], f"conf/task/{task}.yaml declares no smoke.overrides"
    validate_config(cfg)


@pytest.mark.parametrize("group", CLAIMED_GROUPS)
def test_every_config_belongs_to_one_task(group):
    """A new model / loss / data / experiment config is claimed in its task's ``smoke.configs`` (so it gets
    tested below), and by one task only."""
    claims = [name for _, name, _ in claimed(group)]
    assert sorted(claims) == sorted(set(claims)), f"{group} configs claimed twice: {claims}"
    assert set(claims) == set(group_choices(CONF_DIR, group))


@pytest.mark.parametrize(("task", "model", "overrides"), claimed("model"))
def test_every_model_builds_and_runs(task, model, overrides, tmp_path):
    """The module with this net maps the task's example batch to predictions its loss and metrics accept."""
    cfg = compose_config([f"task={task}", f"model={model}", *overrides], tmp_path)
    module = hydra.utils.instantiate(cfg.module).eval()
    inputs, target = module.inputs_and_target(module.example_batch(2))
    with torch.no_grad():
        pred = module(inputs)
        loss = module.loss(pred, target)
    assert pred.shape[0] == 2 and torch.isfinite(pred).all()
    assert torch.isfinite(loss)
    metrics = module.metric_fn(pred.float(), target.float())
    assert set(metrics) == set(module.metric_names)
    assert all(value.shape == (2,) and torch.isfinite(value).all() for value in metrics.values())


@pytest.mark.parametrize(("task", "loss", "overrides"), claimed("loss"))
def test_every_loss_prefers_the_ideal_prediction(task, loss, overrides, tmp_path):
    """Each loss is finite and scores the module's ideal prediction of a target (the target itself, for a
    net that predicts in the target's space) below a random prediction."""
    cfg = compose_config([f"task={task}", f"loss={loss}", *overrides], tmp_path)
    module = hydra.utils.instantiate(cfg.module)
    _, target = module.inputs_and_target(module.example_batch(2))
    ideal = module.ideal_prediction(target)
    perfect, random = module.loss(ideal, target), module.loss(torch.rand_like(ideal), target)
    assert torch.isfinite(perfect) and torch.isfinite(random)
    assert perfect.item() < random.item()


@pytest.mark.parametrize(
    ("group", "task", "name", "overrides"),
    [(group, *claim) for group in ("data", "protocol", "experiment") for claim in claimed(group)],
)
def test_every_data_protocol_and_experiment_config_validates_with_its_task(
    group, task, name, overrides, tmp_path
):
    validate_config(compose_config([f"task={task}", f"{group}={name}", *overrides], tmp_path))


@pytest.mark.parametrize("group", ["trainer", "logger", "callbacks", "debug", "augmentation"])
def test_every_choice_of_the_task_free_groups_composes(group, tmp_path):
    for choice in group_choices(CONF_DIR, group):
        OmegaConf.to_container(compose_config([f"{group}={choice}"], tmp_path), resolve=True)


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
        ("data.batch_size=abc", r"^data.batch_size='abc' has the wrong type: expected int$"),
        ("+trainer.max_epoch=3", r"did you mean trainer.max_epochs"),
        ("data.image_size=0", r"^data.image_size=0 is impossible: it must be > 0$"),  # PositiveInt
        ("data.image_size=abc", r"^data.image_size='abc' has the wrong type: expected int$"),  # its base type
        ("module.optimizer.lr=-1", r"^module.optimizer: Invalid learning rate: -1"),  # torch's own check
        ("model.levels=0", r"^model: need levels >= 1"),  # the net's constructor, when it is built
    ],
)
def test_config_is_checked_by_the_constructors_before_anything_runs(override, message, tmp_path):
    cfg = compose_config([override], tmp_path)
    with pytest.raises(UserError, match=message):
        validate_config(cfg)
        instantiate(cfg.data)
        instantiate(cfg.module)


def test_misspelt_key_fails_in_one_line_before_anything_runs():
    result = run_cli("trainer.max_epoch=3")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: trainer.max_epoch is not a config key: check its spelling")
