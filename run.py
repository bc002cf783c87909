"""imaging-lab entry point: `python run.py task=<task> model=<model> ...` (see README and conf/)."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from pathlib import Path

# before the heavy imports: callbacks/step_timer.py reports the start-up time from here (or from the caller's)
os.environ.setdefault("IMAGING_LAB_LAUNCHED_AT", repr(time.time()))

import hydra
from omegaconf import DictConfig

from framework.cli import check_composition, check_group_overrides
from framework.errors import UserError
from framework.paths import PROJECT_ROOT
from framework.resolvers import register_resolvers
from framework.resume import resume_overrides
from framework.runner import run
from framework.validate import validate_config

CONF_DIR = Path(__file__).resolve().parent / "conf"
register_resolvers()
# conf/hydra/launcher/submitit_slurm.yaml replaces the plugin's defaults under the plugin's own name on
# purpose (hydra/launcher=submitit_slurm gets the requeue settings); it lists every field itself.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_slurm' is validated against")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one job. In a multirun a failed job logs its error (its run.log: `scripts/report.py` lists it) and
    returns None, so the sweep goes on and an Optuna study records a failed trial (NaN would stop the
    study: hydra-optuna-sweeper 1.3 tells Optuna 2.10 the NaN, then the failure with the NaN, refused)."""
    multirun = hydra.core.hydra_config.HydraConfig.get().mode.name == "MULTIRUN"
    try:
        validate_config(cfg)
        value = run(cfg)
    except UserError as error:
        logging.getLogger("run").error("%s", error)
        if not multirun:
            raise SystemExit(f"error: {error}") from None
        return None
    except Exception as error:
        if not multirun:
            raise
        cause = error
        while cause.__cause__ is not None:  # Hydra wraps a constructor's error: name the original one
            cause = cause.__cause__
        message = " ".join(str(cause).split())  # one line: the report quotes it
        logging.getLogger("run").error("job failed: %s: %s", type(cause).__name__, message, exc_info=True)
        return None
    return value


if __name__ == "__main__":
    try:
        check_group_overrides(sys.argv[1:], CONF_DIR)
        check_composition(sys.argv[1:], CONF_DIR)
        sys.argv[1:] = resume_overrides(sys.argv[1:], PROJECT_ROOT / "outputs")
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    main()
