"""Shared fixtures: compose the real configs (as `run.py` would), small and offline."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from framework.paths import shared_data_dir, shared_weights_dir
from framework.resolvers import register_resolvers
from losses.perceptual import DEFAULT_VGG_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
os.environ.setdefault("WANDB_MODE", "offline")
register_resolvers()
# ../shared/data and ../shared/weights, or $IMAGING_LAB_SHARED_DATA / _WEIGHTS, as run.py resolves them
SHARED_DATA = shared_data_dir()
SHARED_WEIGHTS = shared_weights_dir()
needs_vgg_weights = pytest.mark.skipif(
    not DEFAULT_VGG_WEIGHTS.is_file(), reason=f"needs {DEFAULT_VGG_WEIGHTS}"
)


def shared_path(relative: str) -> Path:
    """``data/…`` or ``weights/…`` in the shared folders, where ``run.py`` would look for it."""
    root, _, rest = relative.partition("/")
    return {"data": SHARED_DATA, "weights": SHARED_WEIGHTS}[root] / rest


def skip_reason(path: str | Path) -> str:
    return f"needs {path} (../shared, or IMAGING_LAB_SHARED_DATA / _WEIGHTS)"


def missing_shared_path(error: BaseException) -> str | None:
    """The shared path an error (or one it was raised from) names when the shared folder it lies in is
    absent: the one-line ``DataError`` / ``UserError`` for a data set or weights file of ``../shared``."""
    roots = [root for root in (SHARED_DATA, SHARED_WEIGHTS) if not root.is_dir()]
    absent = [str(root) for root in roots] + [str(root.resolve()) for root in roots]
    seen: BaseException | None = error
    while seen is not None and absent:
        for word in str(seen).replace("'", " ").split():
            if word.startswith(tuple(absent)):
                return word.rstrip(":,")
        seen = seen.__cause__ or seen.__context__
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A clone with no ``../shared`` beside it: a test that stops on a missing shared data set or weights
    file is reported as skipped, naming the path, instead of failed (anything else still fails; with the
    shared folders present nothing changes)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.excinfo is not None:
        path = missing_shared_path(call.excinfo.value)
        if path is not None:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {skip_reason(path)}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.shared("data/…", "weights/…")``: a test that needs these shared folders is skipped, with
    the missing path as its reason, in a clone that has no ``../shared`` beside it."""
    for marker in item.iter_markers("shared"):
        missing = [path for path in marker.args if not shared_path(path).exists()]
        if missing:
            pytest.skip(skip_reason(shared_path(missing[0])))


def reproducible(metrics: dict[str, float]) -> dict[str, float]:
    """A run's metrics without its timings (``perf/``: wall-clock, never the same twice)."""
    return {name: value for name, value in metrics.items() if not name.startswith("perf/")}


def task_names() -> list[str]:
    """Every task, from ``conf/task/``: the shared tests know no task by name."""
    return sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))


@functools.cache
def smoke(task: str) -> dict[str, Any]:
    """What ``conf/task/<task>.yaml`` declares for the tests under ``smoke``: ``overrides`` (a seconds-long
    run) and ``configs`` (group → config → overrides: every config of a group that belongs to the task)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"task={task}"])
    GlobalHydra.instance().clear()
    declared = OmegaConf.to_container(cfg.get("smoke") or {})
    return {"overrides": declared.get("overrides", []), "configs": declared.get("configs", {})}


def claimed(group: str) -> list[tuple[str, str, list[str]]]:
    """``(task, config, overrides)`` for every config of ``group`` a task claims in its ``smoke.configs``."""
    return [
        (task, name, list(overrides))
        for task in task_names()
        for name, overrides in smoke(task)["configs"].get(group, {}).items()
    ]


def compose_config(overrides: Sequence[str], output_dir: Path | None = None) -> DictConfig:
    """The config `python run.py <overrides>` would run, with its output dir set to ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
            cfg.paths.log_dir = str(output_dir)
        del cfg.hydra
    return cfg


@pytest.fixture
def single_thread() -> Iterator[None]:
    """Tiny tensors run fastest on one thread and do not stall when other processes load the 2 cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    def make(*overrides: str, tiny: bool = True, output_dir: Path | None = None) -> DictConfig:
        task = next((o.split("=", 1)[1] for o in overrides if o.startswith("task=")), "phase_retrieval")
        base = ["logger=csv", "trainer.deterministic=true", "callbacks.rich_progress_bar=null"]
        extra = smoke(task)["overrides"] if tiny else []
        return compose_config([*base, *extra, *overrides], output_dir or tmp_path)

    return make


def run_cli(
    *args: str, cwd: Path = ROOT, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python run.py <args>` in a subprocess (what a user types), with ``env`` added to the environment."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
