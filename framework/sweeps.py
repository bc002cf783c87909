"""The jobs of a basic-sweeper multirun, as Hydra's ``BasicSweeper`` will launch them.

``hydra.sweeper.params`` of an experiment (``experiment=pr_ablation``) and the sweeps of the command line
(``model=a,b``) expand to the cartesian product Hydra runs, in Hydra's own order (the command line replaces a
swept key of the same name). Used to check that every job of a named sweep composes before any runs, and to
list the jobs of a multirun that never started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser


def sweep_jobs(params: Mapping[str, Any] | None, arguments: Sequence[str] = ()) -> list[list[str]]:
    """Each job's overrides (``["pr_ablation=haar", "experiment=pr_ablation", …]``) for the sweeper params
    ``params`` and the command-line ``arguments``, in launch order."""
    overrides = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    parsed = OverridesParser.create().parse_overrides(overrides)
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [list(job) for batch in batches for job in batch]
