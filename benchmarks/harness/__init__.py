"""The shared benchmark harness: a benchmark script is its run list, its rows, its targets and its table.

Runs (:mod:`.runs`): :func:`run_experiment` runs ``python run.py <overrides>`` into a run dir, reused when
it finished (``--reuse``) and resumed when it was interrupted; :func:`finished_checkpoint`,
:func:`monitored_test_metrics`, :func:`say`.

Quality (:mod:`.quality`): every figure comes from the task's own test step, never a second loop.
:func:`read_test_metrics` reads a finished run's ``metrics.json`` (by test set, with each set's n);
:func:`run_test` runs ``stage=test`` of a finished run in this process, with config overrides (e.g. another
input degradation), fewer test batches (quick modes), or a variant net in the trained net's place;
:func:`run_metrics` picks the one of the two that gives what is asked; :func:`cached_run_metrics` keeps
what a run's test step gave with overrides (e.g. on its validation images) in the run dir.

Selection (:mod:`.selection`): :func:`select_best` chooses a headline variant on validation figures
(:class:`Selection` says which, on what, among which), whose test row is then reported.
:func:`load_run` / :func:`load_net` (from :mod:`framework.export`) give a run's module / net.

Speed (:mod:`.speed`): :func:`precision_variants` (fp32, bf16 autocast, channels-last, ONNX Runtime fp32,
each an ``nn.Module``), :func:`time_variants` (every variant of every model in the same interleaved rounds,
median; ms per image and fps), :func:`conv_gflop`, :func:`reference_conv` and :func:`conv_peak` (GFLOP/s
against a large conv timed in the same rounds).

Loops (:mod:`.loops`): :class:`~.loops.BareLoop` (a task's training step by hand on batches in memory: what
the overhead, data and precision benchmarks compare with), :func:`~.loops.compose_run_config`.

Tables (:mod:`.tables`): :func:`write_results` (``benchmarks/results/<name>.{md,json}`` in the
``../shared/BENCHMARKS.md`` shape), :func:`merge_into_previous` (a partial run's rows merged into the
committed ones), :func:`markdown_table`, :func:`target` and :func:`targets_markdown`, :func:`fmt`.

A benchmark script in ``benchmarks/`` imports it as ``harness`` (the script's folder is on ``sys.path``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: framework, models, …

from framework.export import OnnxNet, load_net, load_run

from .cli import benchmark_parser
from .quality import (
    RunMetrics,
    cached_run_metrics,
    read_test_metrics,
    run_config,
    run_metrics,
    run_test,
    split_test_metrics,
)
from .runs import RESULTS, ROOT, finished_checkpoint, monitored_test_metrics, reusable, run_experiment, say
from .selection import Selection, select_best
from .speed import (
    BF16,
    CHANNELS_LAST,
    CHANNELS_LAST_BF16,
    FP32,
    ORT_FP32,
    PRECISIONS,
    REFERENCE,
    Bf16Autocast,
    ChannelsLast,
    Timed,
    conv_gflop,
    conv_peak,
    precision_variants,
    reference_conv,
    time_rounds,
    time_variants,
)
from .tables import (
    fmt,
    machine,
    markdown_table,
    merge_into_previous,
    merge_rows,
    previous_results,
    target,
    targets_markdown,
    write_results,
)

__all__ = [
    "BF16",
    "CHANNELS_LAST",
    "CHANNELS_LAST_BF16",
    "FP32",
    "ORT_FP32",
    "PRECISIONS",
    "REFERENCE",
    "RESULTS",
    "ROOT",
    "Bf16Autocast",
    "ChannelsLast",
    "OnnxNet",
    "RunMetrics",
    "Selection",
    "Timed",
    "benchmark_parser",
    "cached_run_metrics",
    "conv_gflop",
    "conv_peak",
    "finished_checkpoint",
    "fmt",
    "load_net",
    "load_run",
    "machine",
    "markdown_table",
    "merge_into_previous",
    "merge_rows",
    "monitored_test_metrics",
    "precision_variants",
    "previous_results",
    "read_test_metrics",
    "reference_conv",
    "reusable",
    "run_config",
    "run_experiment",
    "run_metrics",
    "run_test",
    "say",
    "select_best",
    "split_test_metrics",
    "target",
    "targets_markdown",
    "time_rounds",
    "time_variants",
    "write_results",
]
