"""``hparams_search=prdad_optuna``: a tiny TPE study through ``run.py``; a failed trial is recorded as failed
and the study goes on."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch import Callback
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, run_cli, smoke


class FailFirstTrial(Callback):
    """Crashes the first trial of the process (the basic launcher runs every trial in one process)."""

    built = 0

    def __init__(self) -> None:
        type(self).built += 1
        self.fail = type(self).built == 1

    def setup(self, *args: Any, **kwargs: Any) -> None:
        if self.fail:
            raise RuntimeError("trial crashed on purpose")


def test_three_trials_one_failed_and_the_study_goes_on(tmp_path):
    result = run_cli(
        "hparams_search=prdad_optuna",
        "hydra.sweeper.n_trials=3",
        *smoke("phase_retrieval")["overrides"],
        "trainer.limit_train_batches=2",
        "logger=csv",
        "callbacks.rich_progress_bar=null",
        "callbacks.image_logger=null",
        "+callbacks.fail._target_=tests.test_optuna.FailFirstTrial",
        f"hydra.sweep.dir={tmp_path}",
        env={"OMP_NUM_THREADS": "1"},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Failed experiment" in output  # the sweeper's report of the failed trial
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1", "2"]
    assert not (tmp_path / "0" / "metrics.json").exists()
    assert (tmp_path / "1" / "metrics.json").is_file() and (tmp_path / "2" / "metrics.json").is_file()
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {
        "module.optimizer.lr",
        "module.optimizer.weight_decay",
        "model.levels",
        "model.dropout",
    }
    assert 0.0 < best["best_value"] <= 1.0


@pytest.mark.parametrize(
    "search", ["prdad_optuna", "sr_optuna", "seg_optuna", "autocorrect_optuna", "style_optuna"]
)
def test_every_search_tunes_keys_its_task_has(search):
    """Each task's search composes, names a metric its task logs at validation and tunes existing keys."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    searched = OmegaConf.load(CONF_DIR / "hparams_search" / f"{search}.yaml").hydra.sweeper.params
    assert searched and all(OmegaConf.select(cfg, key) is not None for key in searched), search
    assert cfg.optimized_metric.startswith("val/") and cfg.hydra.sweeper.study_name
