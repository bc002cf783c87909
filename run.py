"""imaging-lab entry point: `python run.py task=<task> model=<model> ...` (see README and conf/)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from framework.cli import check_composition, check_group_overrides
from framework.errors import UserError
from framework.resolvers import PROJECT_ROOT, register_resolvers
from framework.resume import resume_overrides
from framework.runner import run
from framework.validate import validate_config

CONF_DIR = Path(__file__).resolve().parent / "conf"
register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        validate_config(cfg)
        return run(cfg)
    except UserError as error:
        logging.getLogger("run").error("%s", error)
        if not hydra.core.hydra_config.HydraConfig.get().mode.name == "MULTIRUN":
            raise SystemExit(f"error: {error}") from None
        return None  # one failed job of a sweep does not kill the sweep


if __name__ == "__main__":
    try:
        check_group_overrides(sys.argv[1:], CONF_DIR)
        check_composition(sys.argv[1:], CONF_DIR)
        sys.argv[1:] = resume_overrides(sys.argv[1:], PROJECT_ROOT / "outputs")
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
    main()
