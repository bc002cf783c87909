"""The task defaults train in bf16 only where the device computes it natively (``${fast_precision:…}``)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from framework import resolvers
from tests.conftest import task_names


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_the_cpu_gets_bf16_only_where_it_is_native(monkeypatch, native, expected):
    monkeypatch.setattr(resolvers, "cpu_computes_bf16", lambda: native)
    assert resolvers.fast_precision("cpu") == expected
    assert resolvers.fast_precision("mps") == "32-true"


def test_a_gpu_gets_bf16_even_where_the_config_is_composed_without_one(monkeypatch):
    monkeypatch.setattr(resolvers.torch.cuda, "is_available", lambda: False, raising=False)
    assert resolvers.fast_precision("gpu") == "bf16-mixed"
    monkeypatch.setattr(resolvers, "cpu_computes_bf16", lambda: False)
    assert resolvers.fast_precision("auto") == "32-true"  # no CUDA: the CPU's answer


@pytest.mark.parametrize("task", task_names())
def test_every_task_default_resolves_to_the_fast_precision_of_its_accelerator(task, make_cfg):
    cfg = make_cfg(f"task={task}", tiny=False)
    precision = OmegaConf.select(cfg, "trainer.precision")
    if task == "style_transfer":  # gatys / fast optimise pixels: fp32 by design (its task config)
        assert precision == "32-true"
        return
    assert precision == resolvers.fast_precision("cpu")
    assert OmegaConf.select(make_cfg(f"task={task}", "trainer=gpu", tiny=False), "trainer.precision") == (
        resolvers.fast_precision("gpu")
    )
