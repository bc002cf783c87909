"""The portrait segmentation task: the configured augmentation keeps image and mask aligned, evaluation scores
at the mask's own resolution (mixed sizes one at a time), portrait mode blurs the background without a halo,
and ``stage=predict`` writes the mask, the cut-out and the blurred photo at the input's size and
orientation."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.io import load_image, save_image
from datamodules.segmentation import SegmentationDataModule
from framework.runner import run
from lightning_modules.portrait_segmentation import PortraitSegmentationModule
from operators.portrait_mode import blur_background, cutout, overlay
from tests.conftest import compose_config
from tests.test_exif_orientation import ORIENTATION, as_upright, phone_jpeg

TASK = "task=portrait_segmentation"


def person_pairs(root: Path, sizes: list[tuple[int, int]]) -> dict[str, object]:
    """Photos with a white "person" (head + shoulders) on a dark textured background, and its 0/255 mask."""
    for i, (height, width) in enumerate(sizes):
        y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
        cx = 0.4 + 0.05 * i
        person = ((x - cx) ** 2 / 0.04 + (y - 0.35) ** 2 / 0.03 < 1) | ((y > 0.6) & (abs(x - cx) < 0.35))
        rng = np.random.default_rng(i)
        background = 0.15 * rng.random((height, width, 3))
        photo = np.where(person[..., None], 0.95, background)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray((photo * 255).astype(np.uint8)).save(root / "images" / f"p{i}.png")
        Image.fromarray(person.astype(np.uint8) * 255).save(root / "masks" / f"p{i}.png")
    return {"images": str(root / "images"), "masks": str(root / "masks"), "binary": True}


def hydra_spec(spec: dict[str, object]) -> str:
    """A folder spec as a Hydra override value: ``{images:'…',masks:'…',binary:true}``."""
    return (
        "{"
        + ",".join(f"{k}:'{v}'" if isinstance(v, str) else f"{k}:{str(v).lower()}" for k, v in spec.items())
        + "}"
    )


def test_configured_augmentation_keeps_image_and_mask_aligned(tmp_path, single_thread):
    """The task's own item transforms (random resized crop, flip) and batch augmentation (affine, colour
    jitter, gray) move each image and its mask together: the bright person is still where the mask is."""
    spec = person_pairs(tmp_path / "pairs", [(400, 300)] * 4)
    cfg = compose_config([TASK, f"data.train=[{hydra_spec(spec)}]", "data.batch_size=4"], tmp_path)
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("fit")
    torch.manual_seed(0)
    moved = 0
    for _ in range(3):
        batch = dm.augmentation(next(iter(dm.train_dataloader())))
        image, mask = batch["input"], batch["target"]
        size = cfg.module.image_size
        assert image.shape == (4, 3, size, size) and mask.shape == (4, size, size)
        assert mask.dtype == torch.long and set(mask.unique().tolist()) <= {0, 1}
        bright = image.mean(dim=1) > 0.35  # jitter scales white ≥ 0.95·0.7² and dark ≤ 0.15·1.3² < 0.35
        agree = (bright == mask.bool()).float().mean(dim=(1, 2))
        assert agree.min() > 0.97, agree  # edges: bilinear image vs nearest mask
        moved += int((mask.float().mean(dim=(1, 2)) - 0.5).abs().gt(0.01).sum())
    assert moved > 0  # the check can fail: crops and affines did move the masks


def test_mixed_size_splits_are_scored_one_image_at_a_time(tmp_path):
    same = person_pairs(tmp_path / "same", [(40, 30)] * 3)
    mixed = person_pairs(tmp_path / "mixed", [(40, 30), (31, 47), (40, 30)])
    dm = SegmentationDataModule(train=[same], val=[same], test={"same": same, "mixed": mixed}, batch_size=3)
    dm.setup()
    assert dm.val_dataloader().batch_size == 3
    assert [loader.batch_size for loader in dm.test_dataloader()] == [3, 1]
    assert [batch["target"].shape for batch in dm.test_dataloader()[1]][1] == (1, 31, 47)


class ShapeSpy(torch.nn.Module):
    """Logits = 4·(red − 0.5), remembering the input sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return 4 * self.weight * (x[:, :1] - 0.5)


def test_evaluation_runs_the_net_at_the_inference_size_and_scores_at_the_masks():
    module = PortraitSegmentationModule(ShapeSpy(), image_size=32, inference_size=32).eval()
    image = torch.zeros(1, 3, 75, 50)
    image[:, 0, 20:60, 10:40] = 1
    logits = module(image)
    assert module.net.seen == [(48, 32)]  # short side 32, aspect kept
    assert logits.shape == (1, 1, 75, 50)
    target = (image[:, :1] > 0.5).float()
    assert module.metric_fn(logits, target)["iou"].item() > 0.9
    module.flip_average = True  # test-time augmentation: the mean of the photo's and its mirror's logits
    mirrored = PortraitSegmentationModule(ShapeSpy(), image_size=32, inference_size=32).eval()(image.flip(-1))
    expected = (logits + mirrored.flip(-1)) / 2
    torch.testing.assert_close(module(image), expected)
    assert not torch.allclose(expected, logits)  # the photo is not symmetric: the check can fail
    module.train()
    assert module(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32) and module.net.seen[-1] == (32, 32)


def test_portrait_mode_blurs_the_background_without_a_halo():
    torch.manual_seed(0)
    image = torch.full((1, 3, 120, 90), 0.1)
    image[..., ::2, :] = 0.3  # a striped background: blurring it makes it uniform
    alpha = torch.zeros(1, 1, 120, 90)
    alpha[..., 30:90, 30:60] = 1.0
    image = image * (1 - alpha) + alpha  # a white person
    out = blur_background(image, alpha, sigma=0.05)
    person = alpha.bool().expand_as(image)
    torch.testing.assert_close(out[person], image[person])  # the person is untouched
    background = out[..., :, :20]
    assert background.std() < 0.02 and background.mean() == pytest.approx(0.2, abs=0.02)
    # beside the person the background stays background (a plain blur would mix in the white person)
    ring = out[..., 40:80, 62:66]
    assert ring.max() < 0.26
    assert torch.equal(blur_background(image, torch.ones_like(alpha)), image)
    rgba = cutout(image, alpha)
    assert rgba.shape == (1, 4, 120, 90) and torch.equal(rgba[:, 3:], alpha)
    shown = overlay(image, alpha, 1 - alpha)  # all wrong: tinted red where person, blue elsewhere
    assert shown[0, 0, 50, 45] > shown[0, 2, 50, 45] and shown[0, 2, 5, 5] > shown[0, 0, 5, 5]


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory) -> Path:
    """A seconds-long fit of a tiny U-Net on synthetic pairs: its best checkpoint."""
    root = tmp_path_factory.mktemp("portrait")
    spec = hydra_spec(person_pairs(root / "pairs", [(40, 30)] * 4))
    cfg = compose_config(
        [
            TASK,
            "logger=csv",
            "callbacks.rich_progress_bar=null",
            "callbacks.image_logger=null",
            "model=unet",
            "model.base_channels=4",
            "model.depth=2",
            "module.image_size=24",
            "module.inference_size=24",
            f"data.train=[{spec}]",
            f"data.val=[{spec}]",
            "~data.test",
            f"+data.test={{synthetic:{spec}}}",
            "data.batch_size=2",
            "trainer.max_epochs=1",
        ],
        root / "fit",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run(cfg)
    finally:
        torch.set_num_threads(threads)
    return Path(json.loads((root / "fit" / "metrics.json").read_text())["checkpoints"]["best"])


def test_predict_writes_mask_cutout_and_portrait_at_the_input_size_and_orientation(tiny_fit, tmp_path):
    photos = tmp_path / "photos"
    save_image(torch.rand(3, 37, 53), photos / "odd.png")
    phone_jpeg(photos / "phone.jpg", 6)  # stored turned, tagged to display upright (24×40)
    out = tmp_path / "out"
    cfg = compose_config(
        [
            TASK,
            "stage=predict",
            f"ckpt_path={tiny_fit}",
            f"input={photos}",
            f"output={out}",
            "logger=csv",
            "callbacks.rich_progress_bar=null",
            "model=unet",
            "model.base_channels=4",
            "model.depth=2",
            "module.inference_size=24",
        ],
        tmp_path / "predict",
    )
    run(cfg)
    plain = phone_jpeg(tmp_path / "plain.jpg", 6, tag=False)
    inputs = {"odd": load_image(photos / "odd.png"), "phone": as_upright(load_image(plain), 6)}
    for name, upright in inputs.items():
        height, width = upright.shape[-2:]
        with Image.open(out / f"{name}.png") as mask, Image.open(out / f"{name}_cutout.png") as rgba:
            assert (mask.mode, mask.size) == ("L", (width, height))
            assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
            assert (rgba.mode, rgba.size) == ("RGBA", (width, height))
            assert rgba.getexif().get(ORIENTATION) is None
            pixels = torch.from_numpy(np.asarray(rgba).copy()).permute(2, 0, 1).float() / 255
        # the cut-out holds the upright photo itself (not a turned one) under its alpha
        torch.testing.assert_close(pixels[:3], upright, atol=1 / 255 + 1e-6, rtol=0)
        alpha = pixels[3:]
        assert torch.equal((alpha >= 0.5).float()[0] * 255, torch.from_numpy(np.asarray(mask).copy()).float())
        portrait = load_image(out / f"{name}_portrait.png")
        assert portrait.shape == (3, height, width)
        expected = blur_background(upright[None], alpha[None], 0.015)[0]
        assert (portrait - expected).abs().max() <= 2 / 255 + 1e-6


def run_stage(tiny_fit: Path, run_dir: Path, *overrides: str) -> dict[str, object]:
    """`run.py` on the tiny fit's checkpoint; its metrics.json."""
    common = ["logger=csv", "callbacks.rich_progress_bar=null", "model=unet", "model.base_channels=4"]
    cfg = compose_config(
        [TASK, f"ckpt_path={tiny_fit}", *common, "model.depth=2", "module.inference_size=24", *overrides],
        run_dir,
    )
    run(cfg)
    return json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}


def test_onnx_runtime_tests_and_predicts_as_torch_does(tiny_fit, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    spec = hydra_spec(person_pairs(tmp_path / "pairs", [(40, 30)] * 3))
    data = ["~data.test", f"+data.test={{synthetic:{spec}}}", f"data.val=[{spec}]", f"data.train=[{spec}]"]
    data.append("trainer.precision=32-true")  # ONNX Runtime computes in float32: compare with float32 torch
    tested = {
        runtime: run_stage(tiny_fit, tmp_path / f"test_{runtime}", "stage=test", f"runtime={runtime}", *data)
        for runtime in ("torch", "onnx")
    }
    assert tested["onnx"]["runtime"] == "onnx" and tested["onnx"]["tested_checkpoint"] == str(tiny_fit)
    assert tiny_fit.with_suffix(".onnx").is_file()  # exported beside the checkpoint, reused next time
    for key, value in tested["torch"]["metrics"].items():
        assert tested["onnx"]["metrics"][key] == pytest.approx(value, abs=1e-4), key
    photos = tmp_path / "photos"
    save_image(torch.rand(3, 37, 53), photos / "odd.png")
    masks = {}
    for runtime in ("torch", "onnx"):
        out = tmp_path / f"out_{runtime}"
        run_stage(
            tiny_fit,
            tmp_path / f"predict_{runtime}",
            "stage=predict",
            f"runtime={runtime}",
            f"input={photos}",
            f"output={out}",
        )
        masks[runtime] = np.asarray(Image.open(out / "odd.png"))
    # the same mask, but for a pixel whose probability sits within float rounding of the threshold
    assert (masks["onnx"] != masks["torch"]).mean() < 0.01


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (["stage=fit", "runtime=onnx"], "runtime=onnx runs a trained net (stage=test or predict)"),
        (["stage=test", "runtime=tensorrt"], "runtime=tensorrt is not a runtime: choose one of torch, onnx"),
    ],
)
def test_runtime_mistakes_are_one_line_errors(tmp_path, overrides, said):
    from framework.errors import UserError

    cfg = compose_config([TASK, *overrides], tmp_path / "run")
    with pytest.raises(UserError, match=said.replace("(", r"\(").replace(")", r"\)")):
        run(cfg)


def test_onnx_runtime_refuses_a_checkpoint_of_another_shape_in_one_line(tiny_fit, tmp_path):
    from framework.errors import UserError

    cfg = compose_config(
        [TASK, "stage=test", "runtime=onnx", f"ckpt_path={tiny_fit}", "model=unet", "model.base_channels=8"],
        tmp_path / "run",
    )
    with pytest.raises(UserError, match="does not fit this model"):
        run(cfg)
