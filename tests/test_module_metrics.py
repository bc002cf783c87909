"""Validation / test metrics are computed in fp32 even when the run uses bf16 autocast."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.phase_retrieval import PhaseRetrievalModule
from metrics.phase_retrieval import rot180_invariant_metrics
from operators.fourier import FourierMagnitude


class Blur(nn.Module):
    """A stand-in 'network' from the magnitude to an image: a fixed, deterministic function."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(y[..., 4:-4, 4:-4] - 0.5)


def test_metrics_under_bf16_autocast_equal_fp32():
    module = PhaseRetrievalModule(net=Blur(), forward_model=FourierMagnitude(pad=4))
    module.log = lambda *args, **kwargs: None  # no trainer here
    x = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module._evaluate({"target": x}, "test", module.test_metrics["all"])
    got = {name: float(metric.compute()) for name, metric in module.test_metrics["all"].items()}
    pred = Blur()(FourierMagnitude(pad=4)(x))
    want = {name: float(value.mean()) for name, value in rot180_invariant_metrics(pred, x).items()}
    for name, value in want.items():
        assert abs(got[name] - value) < 1e-5 * max(1.0, abs(value)), name
    mean_mse = rot180_invariant_metrics(pred, x)["mse"].double().mean()
    assert abs(got["psnr_paper"] - float(20 * torch.log10(1 / mean_mse))) < 1e-3
