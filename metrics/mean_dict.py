"""A dict of ``torchmetrics.MeanMetric``: averages per-sample metric values over an epoch, DDP-correct."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torchmetrics import MeanMetric


class MeanMetricDict(nn.ModuleDict):
    """``accumulate({"psnr": (B,), ...})`` adds per-sample values; each entry is logged as a Metric object."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__({name: MeanMetric() for name in names})

    def accumulate(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self[name].update(value.detach().float())
