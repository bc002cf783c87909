"""Speed of a net on an example input: fp32, bf16 autocast, channels-last and ONNX Runtime variants, every
variant of every model timed in the same interleaved rounds (median), so a change of load on a shared
machine hits them alike; and the conv arithmetic they reach.

    variants = precision_variants(net, x, workdir)           # name → nn.Module, same input, same output
    timed = time_variants({"mynet": (variants, x)}, rounds=10)
    timed[0].ms_per_image, timed[0].fps

A variant is an ``nn.Module``, so the same object can stand in for the trained net in the task's test step
(:func:`harness.quality.run_test`) to score what the speed costs.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from framework.export import OnnxNet, export_net

FP32, BF16 = "fp32", "bf16 autocast"
CHANNELS_LAST, CHANNELS_LAST_BF16 = "channels-last fp32", "channels-last + bf16 autocast"
ORT_FP32 = "ONNX Runtime fp32"
PRECISIONS = (FP32, BF16, CHANNELS_LAST, CHANNELS_LAST_BF16, ORT_FP32)


class Bf16Autocast(nn.Module):
    """``net`` under ``torch.autocast(dtype=bfloat16)`` on the input's device; the output back in float32."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.net(x).float()


class ChannelsLast(nn.Module):
    """A copy of ``net`` in channels-last memory format, fed channels-last inputs (the same values)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))


def precision_variants(
    net: nn.Module,
    example: Tensor,
    workdir: Path | None = None,
    threads: int | None = None,
    which: Sequence[str] = PRECISIONS,
    name: str = "net",
) -> dict[str, nn.Module]:
    """``net`` as each variant of ``which`` (names from :data:`PRECISIONS`), in that order. The ONNX Runtime
    one is ``net`` exported to ``workdir/<name>.onnx`` (traced on ``example``; a net with its own
    ``export_onnx`` exports itself), run with ``threads`` intra-op threads."""
    net = net.eval()
    make: dict[str, Callable[[], nn.Module]] = {
        FP32: lambda: net,
        BF16: lambda: Bf16Autocast(net),
        CHANNELS_LAST: lambda: ChannelsLast(net),
        CHANNELS_LAST_BF16: lambda: Bf16Autocast(ChannelsLast(net)),
        ORT_FP32: lambda: OnnxNet(export_net(net, _workdir(workdir) / f"{name}.onnx", example), threads),
    }
    unknown = [variant for variant in which if variant not in make]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}: choose from {', '.join(make)}")
    return {variant: make[variant]() for variant in which}


def _workdir(workdir: Path | None) -> Path:
    if workdir is None:
        raise ValueError("the ONNX Runtime variant needs a workdir for its .onnx file")
    return workdir


def time_rounds(calls: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per call of every callable, timed in ``rounds`` interleaved rounds after one warm-up
    call each, under ``torch.inference_mode``."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    with torch.inference_mode():
        for fn in calls.values():
            fn()
        for _ in range(rounds):
            for name, fn in calls.items():
                started = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in seconds.items()}


@dataclass
class Timed:
    """One variant of one model: median seconds per call on an input of ``batch`` images."""

    model: str
    variant: str
    net: nn.Module
    seconds: float
    batch: int

    @property
    def ms_per_image(self) -> float:
        return 1000.0 * self.seconds / self.batch

    @property
    def fps(self) -> float:
        """Images per second."""
        return self.batch / self.seconds


def time_variants(models: Mapping[str, tuple[Mapping[str, nn.Module], Tensor]], rounds: int) -> list[Timed]:
    """Time every variant of every model (name → (variant name → net, input)) in the same interleaved
    rounds (:func:`time_rounds`); one :class:`Timed` per variant, in the given order."""
    calls = {
        (model, variant): (lambda net=net, x=x: net(x))
        for model, (variants, x) in models.items()
        for variant, net in variants.items()
    }
    seconds = time_rounds(calls, rounds)  # type: ignore[arg-type]
    return [
        Timed(model, variant, models[model][0][variant], seconds[(model, variant)], len(models[model][1]))
        for model, variant in calls
    ]


def conv_gflop(net: nn.Module, example: Tensor) -> float:
    """GFLOP of the Conv2d layers of one forward pass on ``example`` (2 · MACs; activations, reshapes and
    every other layer not counted)."""
    total = 0.0

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += 2.0 * output.numel() * kernel

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.inference_mode():
            net(example)
    finally:
        for handle in handles:
            handle.remove()
    return total / 1e9


REFERENCE = "large conv"  # the model name of :func:`reference_conv` in :func:`time_variants`


def reference_conv() -> tuple[dict[str, nn.Module], Tensor]:
    """A large conv (128 → 128, 3×3, on 256×256) in fp32 / bf16 autocast, NCHW / channels-last, and its
    input: time it as :data:`REFERENCE` beside a model's variants, and :func:`conv_peak` says the GFLOP/s
    this machine's convolutions reach, so a model's GFLOP/s reads as a fraction of them."""
    generator = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(128, 128, 3, padding=1).eval()
    x = torch.rand(1, 128, 256, 256, generator=generator)
    return precision_variants(conv, x, which=(FP32, BF16, CHANNELS_LAST, CHANNELS_LAST_BF16)), x


def conv_peak(timed: Sequence[Timed], example: Tensor) -> dict[str, float]:
    """GFLOP/s of the :func:`reference_conv` timed among ``timed`` (its input ``example``) in "fp32" and
    "bf16": the faster memory layout of each."""
    reference = {t.variant: t for t in timed if t.model == REFERENCE}
    gflop = conv_gflop(reference[FP32].net, example)
    return {
        "fp32": gflop / min(reference[FP32].seconds, reference[CHANNELS_LAST].seconds),
        "bf16": gflop / min(reference[BF16].seconds, reference[CHANNELS_LAST_BF16].seconds),
    }
