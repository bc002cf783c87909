"""The style-transfer task: its module (training step, metrics, the style a checkpoint renders), the
parameter-free Gatys / fast modules under Lightning's inference mode, its DataModule, and `stage=predict`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from algorithms.style_transfer import FastStyleTransfer, GatysStyleTransfer
from datamodules.io import load_image, save_image
from datamodules.style_transfer import StyleTransferDataModule
from framework.errors import UserError
from framework.runner import run
from lightning_modules.style_transfer import StyleTransferModule, resolve_style
from losses.style import StyleTransferLoss
from models.adain import AdaINStyleTransfer
from models.transformer_net import transformer_net_light
from tests.conftest import needs_vgg_weights, run_cli


def _photo(seed: int, size: tuple[int, int]) -> torch.Tensor:
    """A smooth colourful image (3, H, W) in [0, 1]."""
    y, x = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    phase = (x * (0.3 + 0.1 * seed) + y * 0.2).float()
    return torch.stack([phase.sin(), (phase + 2).cos(), (phase * 0.5).sin()]) * 0.5 + 0.5


@pytest.fixture(scope="module")
def paintings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("styles")
    stripes = (torch.arange(40) // 4 % 2).float().expand(3, 30, 40).clone()
    stripes[1] *= 0.3
    save_image(stripes, folder / "stripes.png")
    save_image(_photo(5, (24, 24)), folder / "waves.png")
    return folder


def _module(net: torch.nn.Module, paintings: Path, **kwargs) -> StyleTransferModule:
    loss = StyleTransferLoss(content_weight=1.0, style_weight=10.0)
    return StyleTransferModule(net, "stripes", str(paintings), style_size=32, loss=loss, **kwargs)


def test_style_is_a_file_or_a_painting_name(paintings):
    assert resolve_style("stripes", str(paintings)) == paintings / "stripes.png"
    assert resolve_style(str(paintings / "waves.png"), None) == paintings / "waves.png"
    with pytest.raises(UserError, match=r"^style=strpes is neither .*paintings: stripes, waves$"):
        resolve_style("strpes", str(paintings))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # no Trainer: logging is a no-op
@pytest.mark.parametrize("make_net", [transformer_net_light, AdaINStyleTransfer])
def test_example_batch_trains_a_step(make_net, paintings, single_thread):
    module = _module(make_net(), paintings)
    batch = module.example_batch(2)
    assert ("style" in batch) == isinstance(module.net, AdaINStyleTransfer)
    loss = module.training_step(batch, 0)
    loss.backward()
    grads = [p.grad for p in module.net.parameters() if p.requires_grad]
    assert torch.isfinite(loss) and grads and all(g is not None for g in grads)
    assert all(p.grad is None for p in module.measure.parameters())  # the metrics' VGG stays frozen
    with torch.no_grad():
        content, target = module.inputs_and_target(batch)
        metrics = module.metric_fn(module(content), target)
    assert {name: value.shape for name, value in metrics.items()} == {
        "style_loss": (2,),
        "content_loss": (2,),
    }


@needs_vgg_weights  # two random stand-ins for the VGG differ: the comparison needs the offline weights
@pytest.mark.parametrize("make_net", [transformer_net_light, AdaINStyleTransfer])
def test_the_metric_is_the_offline_vgg_style_loss(make_net, paintings, single_thread):
    module = _module(make_net(), paintings)
    content, _ = module.inputs_and_target(module.example_batch(2))
    # the metric: exactly the offline VGG's style loss against the run's style, content loss 0 for the content
    reference = StyleTransferLoss(1.0, 1.0)
    assert module.metric_fn(content, content)["content_loss"].abs().max() < 1e-6
    expected = reference.per_sample(content, content, module.style_image)["style"]
    torch.testing.assert_close(module.metric_fn(content, content)["style_loss"], expected)


def test_optimisation_methods_run_in_lightnings_inference_mode(paintings, single_thread):
    loss = StyleTransferLoss(content_weight=1.0, style_weight=10.0)
    content, style = _photo(0, (24, 28))[None], load_image(paintings / "stripes.png")[None]
    for method in (GatysStyleTransfer(loss, steps=10), FastStyleTransfer(loss, k=2)):
        assert not any(p.requires_grad for p in method.parameters())  # nothing to fit
        with torch.inference_mode():
            out = method(content, style)
        assert out.shape == content.shape and not out.requires_grad
        # Gatys lowers its objective, the fast mode the style loss
        before, after = (loss.per_sample(x, content, style) for x in (content, out))
        if isinstance(method, GatysStyleTransfer):
            assert loss.weighted_total(after) < 0.8 * loss.weighted_total(before)
        else:
            assert after["style"] < 0.9 * before["style"]


def test_a_per_style_checkpoint_renders_its_own_style_only(paintings):
    trained = _module(transformer_net_light(), paintings)
    checkpoint: dict = {}
    trained.on_save_checkpoint(checkpoint)
    assert checkpoint["style_transfer"] == {"style": "stripes.png", "per_style": True}
    other = StyleTransferModule(transformer_net_light(), "waves", str(paintings), style_size=32)
    with pytest.raises(
        UserError, match=r"renders one style, stripes.png, not style=waves.png: pass style=stripes"
    ):
        other.on_load_checkpoint(checkpoint)
    adain = StyleTransferModule(AdaINStyleTransfer(), "waves", str(paintings), style_size=32)
    adain.on_load_checkpoint({"style_transfer": {"style": "stripes.png", "per_style": False}})  # any style


def test_datamodule_splits_and_holds_out(tmp_path, paintings):
    photos, tests = tmp_path / "photos", tmp_path / "contents"
    for i in range(6):
        save_image(_photo(i, (40 + i, 50)), photos / f"p{i}.png")
    save_image(_photo(9, (30, 60)), tests / "wide.png")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"val": ["photos/p0.png", "photos/p1.png"], "test": ["photos/p2.png"]}))
    data = StyleTransferDataModule(
        [str(photos)], [str(tests)], str(tmp_path), str(split), crop_size=16, samples_per_epoch=5,
        val_size=20, test_size=48, test_heldout=1, train_styles=[str(paintings / "stripes.png")],
        style_train_size=20,
    )  # fmt: skip
    data.setup("fit")
    data.setup("test")
    assert {p.stem for p in data.train_set.photos.files} == {"p3", "p4", "p5"}  # held-out photos excluded
    item = data.train_set[0]
    assert item["content"].shape == (3, 16, 16) and item["style"].shape == (3, 16, 16)
    assert [tuple(data.val_set[i]["content"].shape) for i in range(2)] == [(3, 20, 20)] * 2
    shapes = {data.test_set[i]["name"]: tuple(data.test_set[i]["content"].shape) for i in range(2)}
    assert shapes == {"wide": (3, 24, 48), "p2": (3, 40, 48)}  # long side 48, aspect kept


def test_predict_writes_the_stylised_image_at_the_input_size_and_the_grid(make_cfg, paintings, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    save_image(_photo(0, (29, 37)), photos / "odd.png")
    run(
        make_cfg(
            "task=style_transfer",
            "model=fast",
            "stage=predict",
            f"style={paintings / 'stripes.png'}",
            f"input={photos}",
            f"output={out}",
            output_dir=tmp_path / "run",
        )
    )
    stylised, grid = load_image(out / "odd.png"), load_image(out / "odd_grid.png")
    assert stylised.shape == (3, 29, 37)
    assert not torch.allclose(stylised, _photo(0, (29, 37)), atol=2 / 255)  # the fast mode changed it
    style_width = round(40 * 29 / 30)  # the painting (30×40) at the photo's height
    assert grid.shape == (3, 29, 37 + style_width + 37)
    torch.testing.assert_close(grid[..., -37:], stylised, atol=1 / 255, rtol=0)


def test_a_photo_size_below_the_nets_minimum_is_one_line():
    result = run_cli("task=style_transfer", "data.val_size=4", "logger=csv")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data.val_size=4 is a photo size in pixels: give at least 16"), last
