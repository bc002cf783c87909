"""What one split accumulates over an epoch: means of per-sample metrics and data-set-level metrics.

Both are torchmetrics objects, so Lightning syncs them across DDP processes before it computes and logs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import torch
from torch import nn
from torchmetrics import MeanMetric, Metric


class MeanMetricDict(nn.ModuleDict):
    """``accumulate({"psnr": (B,), ...})`` adds per-sample values; each entry is logged as a Metric object."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__({name: MeanMetric() for name in names})

    def accumulate(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self[name].update(value.detach().float())


class SplitMetrics(nn.Module):
    """The metrics of one split (validation, or one named test set).

    ``per_sample`` names the metrics a task computes per image (averaged over the split, e.g. mean IoU per
    image); ``dataset`` holds torchmetrics objects computed over the whole split (e.g. ``BinaryJaccardIndex``:
    IoU of the pooled confusion matrix), each updated with ``(pred, target)`` of every batch.
    """

    def __init__(self, per_sample: Iterable[str], dataset: Mapping[str, Metric] | None = None) -> None:
        super().__init__()
        self.loss = MeanMetric()  # batch losses weighted by batch size: the split mean, synced under DDP
        self.per_sample = MeanMetricDict(per_sample)
        self.dataset = nn.ModuleDict(dict(dataset or {}))
        if clash := set(self.per_sample) & set(self.dataset):
            raise ValueError(f"metric names used twice (per sample and data set): {sorted(clash)}")

    def update(self, per_sample: dict[str, torch.Tensor], pred: torch.Tensor, target: torch.Tensor) -> None:
        self.per_sample.accumulate(per_sample)
        for metric in self.dataset.values():
            metric.update(pred.detach(), target.detach())

    def items(self) -> Iterator[tuple[str, Metric]]:
        """Every metric by name: the per-sample means first, then the data-set metrics."""
        yield from self.per_sample.items()
        yield from self.dataset.items()
