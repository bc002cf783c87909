"""``hparams_search=prdad_optuna``: a tiny TPE study through ``run.py``; a failed trial is recorded as failed
and the study goes on."""

from __future__ import annotations

from typing import Any

import yaml
from lightning.pytorch import Callback

from tests.conftest import run_cli, smoke


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
