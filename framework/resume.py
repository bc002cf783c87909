"""``ckpt_path=last`` and resuming into the run directory a checkpoint came from.

``python run.py ckpt_path=last`` picks the newest ``last.ckpt`` of the same task and experiment under
``outputs/``; a fit resumed from a checkpoint inside a run directory continues in that directory (same
``metrics.json``, same W&B run id), so a killed run and its resumption read as one run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from framework.cli import compose_argv
from framework.errors import UserError

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def _arg(argv: Sequence[str], key: str) -> str | None:
    values = [a.split("=", 1)[1] for a in argv if a.lstrip("+").split("=", 1)[0] == key and "=" in a]
    return values[-1] if values else None


def newest_last_checkpoint(log_dir: Path, task: str, experiment: str) -> Path:
    candidates = sorted(
        (log_dir / task / experiment).glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime
    )
    if not candidates:
        raise UserError(
            f"ckpt_path=last found no {log_dir / task / experiment}/*/checkpoints/last.ckpt: "
            "give ckpt_path=<file.ckpt>, or check task= / experiment="
        )
    return candidates[-1]


def run_dir_of(checkpoint: Path) -> Path | None:
    """``<run>/checkpoints/x.ckpt`` → ``<run>`` when ``<run>`` is a run directory made by this framework."""
    run = checkpoint.resolve().parent.parent
    return run if checkpoint.parent.name == "checkpoints" and (run / ".hydra").is_dir() else None


def task_and_experiment(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> tuple[str, str]:
    """``task_name`` and ``experiment_name`` of the run ``argv`` describes, from the composed config (so
    presets that set them, e.g. ``debug=...``, count)."""
    try:
        cfg = compose_argv(argv, conf_dir, ignore=["ckpt_path"])
    except Exception as error:  # run.py's own checks name a bad override before this runs
        raise UserError(f"ckpt_path=last: the command line does not compose ({error})") from None
    return str(cfg.task_name), str(cfg.experiment_name)


def resume_overrides(argv: list[str], log_dir: Path, conf_dir: Path = CONF_DIR) -> list[str]:
    """The command line with ``ckpt_path=last`` resolved and, for a fit, ``hydra.run.dir`` set to the run."""
    ckpt = _arg(argv, "ckpt_path")
    if not ckpt or ckpt == "null" or "-m" in argv or "--multirun" in argv:
        return argv
    if ckpt == "last":
        task, experiment = task_and_experiment(argv, conf_dir)
        path = newest_last_checkpoint(Path(_arg(argv, "paths.log_dir") or log_dir), task, experiment)
    else:
        path = Path(ckpt).expanduser()
    argv = [a for a in argv if not a.startswith("ckpt_path=")] + [f"ckpt_path={path}"]
    run = run_dir_of(path)
    if (_arg(argv, "stage") or "fit") == "fit" and run is not None and _arg(argv, "hydra.run.dir") is None:
        argv.append(f"hydra.run.dir={run}")
    return argv
