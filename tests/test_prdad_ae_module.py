"""PR-DAD II's staged training (PRDADAutoEncoderModule): what each stage trains, and one run end to end."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import pytest
import torch

from framework.errors import UserError
from framework.runner import run
from lightning_modules.phase_retrieval_ae import STAGES, PRDADAutoEncoderModule
from losses.rot180 import Rot180InvariantLoss
from models.prdad import ConvAutoEncoder, PRDADAutoEncoder, PRDADWaveletPacket
from operators.fourier import FourierMagnitude, rot180

pytestmark = pytest.mark.usefixtures("single_thread")


def _module(**kwargs: float) -> PRDADAutoEncoderModule:
    ae = ConvAutoEncoder(channels=(4, 8), code_channels=4)
    net = PRDADAutoEncoder(16, 4, autoencoder=ae, width_multipliers=(1,), conv_widths=(4,))
    return PRDADAutoEncoderModule(
        net,
        FourierMagnitude(4),
        Rot180InvariantLoss(),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3),
        ae_epochs=2,
        mapping_epochs=3,
        **kwargs,
    )


def _trainable(module: PRDADAutoEncoderModule) -> set[str]:
    parts = {"predictor": module.net.predictor, "autoencoder": module.net.autoencoder}
    return {name for name, part in parts.items() if all(p.requires_grad for p in part.parameters())}


def test_schedule_by_epoch() -> None:
    module = _module()
    assert [module.stage_at(e) for e in range(7)] == ["autoencoder"] * 2 + ["mapping"] * 3 + ["finetune"] * 2
    assert module.hparams.ae_epochs == 2 and module.hparams.sparsity_weight == 1e-4  # in checkpoints


def test_each_stage_trains_its_part() -> None:
    module = _module(mapping_image_weight=0.5)
    x = torch.rand(4, 1, 16, 16)
    y = module.forward_model(x)
    expected = {
        "autoencoder": {"autoencoder"},
        "mapping": {"predictor"},
        "finetune": {"predictor", "autoencoder"},
    }
    for stage in STAGES:
        module.set_stage(stage)
        assert _trainable(module) == expected[stage], stage
        assert module.net.autoencoder.training == (stage != "mapping")  # frozen AE: BatchNorm stats fixed
        module.zero_grad(set_to_none=True)
        if stage == "autoencoder":
            parts = module.autoencoder_losses(x)
        elif stage == "mapping":
            parts = module.mapping_losses(y, x)
        else:
            parts = {"image": module.loss(module.net(y), x)}
        sum(parts.values()).backward()
        got_grad = {
            name
            for name, part in (("predictor", module.net.predictor), ("autoencoder", module.net.autoencoder))
            if any(p.grad is not None for p in part.parameters())
        }
        assert got_grad == expected[stage], stage  # finetune: the decoder's grads (the encoder is unused)
    assert set(module.mapping_losses(y, x)) == {"code", "image"}


def test_mapping_code_loss_takes_the_closer_orientation() -> None:
    module = _module()
    module.set_stage("mapping")
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        rotated_code = module.net.autoencoder.encode(rot180(x))
    module.net.predict_code = lambda y: rotated_code  # type: ignore[method-assign]
    assert module.mapping_losses(module.forward_model(x), x)["code"].item() == pytest.approx(0.0, abs=1e-10)


def test_one_optimizer_holds_every_parameter_whatever_the_stage() -> None:
    module = _module()
    module.set_stage("mapping")
    optimizer = module.configure_optimizers()
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in module.parameters()}


def test_refuses_another_net() -> None:
    with pytest.raises(UserError, match="dad_ae"):
        PRDADAutoEncoderModule(PRDADWaveletPacket(16, 4), FourierMagnitude(4))


def test_three_stage_run(make_cfg, tmp_path: Path) -> None:
    run(
        make_cfg(
            "experiment=prdad_ae",
            "module.ae_epochs=1",
            "module.mapping_epochs=1",
            "module.mapping_image_weight=0.5",
            "trainer.max_epochs=3",
            "trainer.precision=32-true",
            "data.image_size=16",
            "data.train_size=128",
            "data.val_size=64",
            "data.test_size=64",
            "data.batch_size=32",
            "model.autoencoder.channels=[8,16]",
            "model.autoencoder.code_channels=8",
            "model.width_multipliers=[1]",
            "model.conv_widths=[8]",
        )
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert {"test/ssim_dr2", "test/ssim_paper", "test/psnr_paper", "val/ssim_paper", "train/image"} <= set(
        metrics
    )
    rows = list(csv.DictReader(next(tmp_path.rglob("metrics.csv")).open()))
    stages = sorted({float(r["train/stage"]) for r in rows if r.get("train/stage")})
    assert stages == [0.0, 1.0, 2.0]
    parts = {k for r in rows for k, v in r.items() if v and k.startswith("train/")}
    assert parts >= {"train/ae_reconstruction", "train/ae_sparsity", "train/code", "train/image"}
