"""The command line every benchmark shares: ``--full`` (the committed result) or ``--quick`` (the default:
tiny trainings), ``--reuse``, ``--no-train``, and where a script supports them ``--only`` and ``--rounds``."""

from __future__ import annotations

import argparse


def benchmark_parser(
    doc: str | None,
    *,
    full: str = "the committed benchmark (full schedules)",
    no_train: str = "never train: a run that has not finished is skipped",
    only: str | None = None,
    rounds: str | None = None,
) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the shared options; ``only`` / ``rounds`` are the help texts of those
    options for a script that can rerun a part of its rows / time in rounds (left out when ``None``)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help=full)
    mode.add_argument("--quick", action="store_true", help="tiny trainings (the default)")
    parser.add_argument(
        "--reuse", action="store_true", help="evaluate finished runs instead of rerunning them"
    )
    parser.add_argument("--no-train", action="store_true", help=no_train)
    if only is not None:
        parser.add_argument("--only", default="", help=only)
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=None, help=rounds)
    return parser
