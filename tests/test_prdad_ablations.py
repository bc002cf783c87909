"""PR-DAD ablations: Fourier-branch MLP input, conv-only net, classical refinement of a net's output."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest
import scipy.fft
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from algorithms.phase_retrieval import magnitude_residual
from framework.errors import UserError
from framework.runner import run
from models.prdad import PRDADWaveletPacket
from models.prdad_ablations import ConvOnlyPR, PRDADFourierBranch, RefinedPR, idct_matrix
from operators.fourier import FourierMagnitude, pad_image
from tests.conftest import CONF_DIR, compose_config

pytestmark = pytest.mark.usefixtures("single_thread")


def _images(b: int, n: int, seed: int = 0) -> torch.Tensor:
    z = torch.rand(b, 1, n // 4, n // 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(z, size=(n, n), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("n", [28, 32])
@pytest.mark.parametrize("pad", [0, 4, 8])
@pytest.mark.parametrize("branch", ["ifft", "idct"])
def test_fourier_branch_shapes(n: int, pad: int, branch: str) -> None:
    net = PRDADFourierBranch(n, pad, levels=2, width_multipliers=(1,), branch=branch)
    m = n + 2 * pad
    branch_features = m * (m // 2 + 1) if branch == "ifft" else m * m
    assert net.predictor.mlp.in_features == m * (m // 2 + 1) + branch_features
    y = FourierMagnitude(pad)(_images(3, n))
    x_hat = net(y)
    assert x_hat.shape == (3, 1, n, n) and x_hat.min() >= 0 and x_hat.max() <= 1
    x_hat.mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("branch", ["ifft", "idct"])
def test_fourier_branch_keeps_the_weight_count(branch: str) -> None:
    def count(net: torch.nn.Module) -> int:
        return sum(p.numel() for p in net.predictor.mlp.parameters())

    base = PRDADWaveletPacket(32, 4)
    equalised = PRDADFourierBranch(32, 4, branch=branch)
    assert abs(count(equalised) - count(base)) < 2e-3 * count(base)
    assert count(PRDADFourierBranch(32, 4, branch=branch, equalise_parameters=False)) > 1.1 * count(base)


def test_branch_transforms_match_numpy_and_scipy() -> None:
    y = FourierMagnitude(5)(_images(2, 14)).double()  # m = 24
    d = idct_matrix(24, torch.float64)
    expected = scipy.fft.idctn(y.numpy(), norm="ortho", axes=(-2, -1))
    torch.testing.assert_close(d.T @ y @ d, torch.from_numpy(expected))
    torch.testing.assert_close(d @ d.T, torch.eye(24, dtype=torch.float64))
    idct_net = PRDADFourierBranch(16, 4, width_multipliers=(1,), branch="idct")
    y = y[..., :24, :24].float()
    torch.testing.assert_close(
        idct_net.branch_image(y), torch.from_numpy(expected).float(), atol=1e-5, rtol=1e-5
    )
    ifft_net = PRDADFourierBranch(16, 4, width_multipliers=(1,), branch="ifft")
    full = torch.fft.ifft2(y.double(), norm="ortho")
    assert full.imag.abs().max() < 1e-6 * full.real.abs().max()  # y is centro-symmetric: real transform
    torch.testing.assert_close(ifft_net.branch_image(y).double(), full.real, atol=1e-5, rtol=1e-5)
    assert "idct" not in idct_net.state_dict()  # derived buffer, not in checkpoints


@pytest.mark.parametrize("n", [28, 32])
@pytest.mark.parametrize("pad", [0, 4, 8])
@pytest.mark.parametrize("input_mode", ["resize", "crop"])
def test_conv_only_forward_backward(n: int, pad: int, input_mode: str) -> None:
    net = ConvOnlyPR(n, pad, channels=(4, 8), input_mode=input_mode)
    y = FourierMagnitude(pad)(_images(2, n))
    assert net.magnitude_map(y).shape == (2, 1, n, n)
    x_hat = net(y)
    assert x_hat.shape == (2, 1, n, n) and x_hat.min() >= 0 and x_hat.max() <= 1
    x_hat.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    assert not any(isinstance(m, torch.nn.Linear) for m in net.modules())


def test_conv_only_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="input_mode"):
        ConvOnlyPR(input_mode="fft")
    with pytest.raises(ValueError, match="channels"):
        ConvOnlyPR(channels=())
    with pytest.raises(ValueError, match="shape"):
        ConvOnlyPR(16, 2, channels=(4,))(torch.rand(1, 1, 16, 16))


class _NoisyOracle(torch.nn.Module):
    """A deliberately imperfect 'network': the true images plus noise (ignores y)."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.x = x

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        noise = 0.15 * torch.randn(self.x.shape, generator=torch.Generator().manual_seed(1))
        return (self.scale * self.x + noise).clamp(0, 1)


@pytest.mark.parametrize("algorithm", ["er", "hio"])
def test_refinement_reduces_the_magnitude_residual(algorithm: str) -> None:
    n, pad = 16, 8
    x = _images(4, n)
    y = FourierMagnitude(pad)(x)
    model = RefinedPR(_NoisyOracle(x), n, pad, algorithm=algorithm, iterations=30, final_er_iterations=10)
    assert not any(p.requires_grad for p in model.parameters())
    x0, refined = model.forward_both(y)
    assert refined.shape == x0.shape == (4, 1, n, n) and not refined.requires_grad
    before = magnitude_residual(pad_image(x0, pad), y)
    after = magnitude_residual(pad_image(refined, pad), y)
    assert (after < 0.7 * before).all(), (before, after)
    torch.testing.assert_close(model(y), refined)


def test_refinement_averaged_with_the_network_output() -> None:
    n, pad = 16, 8
    x = _images(2, n)
    y = FourierMagnitude(pad)(x)
    kwargs = {"iterations": 10, "final_er_iterations": 2}
    x0, refined = RefinedPR(_NoisyOracle(x), n, pad, **kwargs).forward_both(y)
    torch.testing.assert_close(RefinedPR(_NoisyOracle(x), n, pad, output_weight=0.0, **kwargs)(y), x0)
    averaged = RefinedPR(_NoisyOracle(x), n, pad, output_weight=0.25, **kwargs)(y)
    torch.testing.assert_close(averaged, 0.25 * refined + 0.75 * x0)
    with pytest.raises(UserError, match="output_weight"):
        RefinedPR(_NoisyOracle(x), n, pad, output_weight=1.5)


def test_refined_net_stays_frozen_in_eval_mode() -> None:
    model = RefinedPR(PRDADWaveletPacket(16, 4, width_multipliers=(1,)), 16, 4, iterations=2)
    model.train()
    assert model.training and not model.net.training
    assert not any(p.requires_grad for p in model.parameters())


def test_refined_net_loads_a_lightning_checkpoint(tmp_path: Path) -> None:
    trained = PRDADWaveletPacket(16, 4, width_multipliers=(1,))
    torch.nn.init.normal_(trained.predictor.mlp.head[0].weight)
    ckpt = tmp_path / "best.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in trained.state_dict().items()}, "epoch": 3}, ckpt)
    model = RefinedPR(PRDADWaveletPacket(16, 4, width_multipliers=(1,)), 16, 4, checkpoint=str(ckpt))
    torch.testing.assert_close(model.net.state_dict(), trained.state_dict())
    with pytest.raises(UserError, match="does not fit"):
        RefinedPR(PRDADWaveletPacket(16, 4, levels=1, width_multipliers=(2,)), 16, 4, checkpoint=str(ckpt))
    with pytest.raises(UserError, match="does not exist"):
        RefinedPR(trained, 16, 4, checkpoint=str(tmp_path / "nope.ckpt"))


@pytest.mark.parametrize(
    "experiment",
    [
        "ablation_baseline",
        "ablation_ifft",
        "ablation_idct",
        "ablation_ifft_input",
        "ablation_idct_input",
        "ablation_identity_decoder",
        "ablation_shuffle_decoder",
        "ablation_haar_l1",
        "ablation_conv_only",
        "ablation_refine_er",
        "prdad_ae",
    ],
)
def test_experiment_models_build_and_run(experiment: str, tmp_path: Path) -> None:
    overrides = [f"experiment={experiment}", "data.image_size=16", "data.pad=4"]
    if "refine" in experiment:
        overrides += ["model.checkpoint=null", "model.net.width_multipliers=[1]", "model.iterations=2"]
    elif "conv" not in experiment:
        overrides.append("model.width_multipliers=[1]")
    cfg = compose_config(overrides, tmp_path)
    assert cfg.experiment_name == experiment
    net = hydra.utils.instantiate(cfg.model).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 24, 24)).shape == (2, 1, 16, 16)


def test_refine_experiment_tests_a_trained_dad_checkpoint(make_cfg, tmp_path: Path) -> None:
    small = ["data.image_size=16", "data.pad=4", "model.width_multipliers=[1]"]
    run(make_cfg(*small, "trainer.precision=32-true", output_dir=tmp_path / "dad"))
    best = json.loads((tmp_path / "dad" / "metrics.json").read_text())["checkpoints"]["best"]
    net_args = ["model.net.width_multipliers=[1]", "model.iterations=20", "data.test_size=32"]
    value = run(
        make_cfg(
            "experiment=ablation_refine_er",
            *small[:2],
            *net_args,
            f"model.checkpoint={best}",
            "optimized_metric=test/ssim_dr2",
            output_dir=tmp_path / "refine",
        )
    )
    result = json.loads((tmp_path / "refine" / "metrics.json").read_text())
    assert result["stage"] == "test" and result["model"] == "models.prdad_ablations.RefinedPR"
    assert value == pytest.approx(result["metrics"]["test/ssim_dr2"])
    assert all(torch.isfinite(torch.tensor(v)) for v in result["metrics"].values())
    with pytest.raises(UserError, match=r"model\.checkpoint must be set"):
        run(make_cfg("experiment=ablation_refine_er", *small[:2], output_dir=tmp_path / "none"))


def test_optuna_search_composes() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hparams_search=prdad_optuna"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/ssim_paper" and sweeper.n_trials == 20
    assert set(sweeper.params) == {
        "module.optimizer.lr",
        "module.optimizer.weight_decay",
        "model.levels",
        "model.dropout",
    }
    assert OmegaConf.select(cfg, "hydra.mode") is not None


def test_the_refinement_can_start_from_pr_dad_ii(tmp_path: Path) -> None:
    overrides = ["experiment=ablation_refine_hio_average", "model@model.net=dad_ae", "model.checkpoint=null"]
    cfg = compose_config([*overrides, "data.image_size=16", "data.pad=4", "model.iterations=2"], tmp_path)
    model = hydra.utils.instantiate(cfg.model).eval()
    assert type(model.net).__name__ == "PRDADAutoEncoder" and model.output_weight == 0.6
    with torch.no_grad():
        assert model(torch.rand(2, 1, 24, 24)).shape == (2, 1, 16, 16)
