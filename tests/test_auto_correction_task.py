"""The auto-correction task end to end: its module trains, its synthetic test split is fixed, classical
corrections test with no checkpoint, and predict writes full-size corrected photos through the 8-bit path."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest
import torch
from PIL import Image

import datamodules.auto_correction as auto_correction_data
from algorithms.auto_correction import gray_world
from datamodules.auto_correction import AutoCorrectionDataModule, split_of
from datamodules.io import load_image, save_image
from framework.rng import seeded_torch
from framework.runner import run
from metrics.color import psnr
from models.adaptive_lut import AdaptiveLUT, Lut3dTransform, filter_in_bands, identity_lut, lut_to_pil_filter
from models.curves import CurveNet
from operators.global_correction import correct_photo, from_pil, to_pil
from operators.photo_degradation import RandomPhotoDegradation
from tests.conftest import SHARED_DATA, compose_config

FIVEK = SHARED_DATA / "autocorrect" / "fivek_pairs"


def _photos(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (40, 56)) -> Path:
    generator = torch.Generator().manual_seed(seed)
    for i in range(count):
        coarse = torch.rand(3, 4, 4, generator=generator)
        image = torch.nn.functional.interpolate(coarse[None], size=size, mode="bilinear")[0]
        save_image(image, folder / f"p{i:02d}.png")
    return folder


def _datamodule(*folders: Path, **kwargs) -> AutoCorrectionDataModule:
    options = {"val_fraction": 0.2, "test_fraction": 0.3, "crop_size": 32, "eval_size": 32, "batch_size": 4}
    return AutoCorrectionDataModule(
        [str(f) for f in folders], RandomPhotoDegradation(), test_pairs={}, **{**options, **kwargs}
    )


def test_example_batch_loss_and_backward(tmp_path, single_thread):
    module = hydra.utils.instantiate(compose_config(["task=auto_correction"], tmp_path).module).train()
    inputs, target = module.inputs_and_target(module.example_batch(2))
    with torch.no_grad():  # as after some training: a LUT that is not the identity, a head that is not 0
        module.net.basis[1].add_(0.05 * torch.randn_like(module.net.basis[1]))
        module.net.backbone.head.weight.normal_(0.0, 0.01)
    pred, terms = module.regularised(inputs)
    loss = module.loss(pred, target) + terms["total"]
    loss.backward()
    assert set(terms) == {"tv", "monotonicity", "weight_l2", "total"} and torch.isfinite(loss)
    for param in (module.net.basis, module.net.backbone.body[0].weight, module.net.backbone.head.weight):
        assert param.grad is not None and torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0
    metrics = module.metric_fn(pred.detach(), target)
    assert set(metrics) == {"psnr", "ssim", "delta_e00"} and all(v.shape == (2,) for v in metrics.values())


def test_synthetic_test_split_is_the_same_in_every_datamodule(tmp_path, single_thread):
    folder = _photos(tmp_path / "photos", 20)
    first, second = _datamodule(folder), _datamodule(folder, seed=0, batch_size=2)
    for dm in (first, second):
        dm.setup("test")
    (a, *_), (b, *_) = first.test_set, second.test_set
    assert len(a) == len(b) > 0
    for i in range(len(a)):
        assert a[i]["name"] == b[i]["name"]
        assert torch.equal(a[i]["input"], b[i]["input"]) and torch.equal(a[i]["target"], b[i]["target"])
        assert a[i]["input"].shape == (3, 32, 32) and not torch.equal(a[i]["input"], a[i]["target"])
    other_seed = _datamodule(folder, seed=1)
    other_seed.setup("test")
    assert not torch.equal(other_seed.test_set[0][0]["input"], a[0]["input"])  # the seed picks the draws
    # every photo in one split, which another folder does not change
    splits = first.split_files()
    assert sorted(p for files in splits.values() for p in files) == sorted(folder.glob("*.png"))
    assert set(splits["test"]).isdisjoint(splits["train"]) and set(splits["val"]).isdisjoint(splits["train"])
    more = _datamodule(folder, _photos(tmp_path / "more", 5, seed=1))
    assert [p for p in more.split_files()["test"] if p.parent == folder] == splits["test"]
    assert all(split_of(p, 0.2, 0.3) == "test" for p in splits["test"])


def test_a_test_items_own_parameters_make_and_undo_it(tmp_path, single_thread):
    """``degradation_params`` gives the draw that made a test item (the benchmark's oracle row inverts it)."""
    dm = _datamodule(_photos(tmp_path / "photos", 20))
    dm.setup("test")
    pairs = dm.test_set[0]
    item, params = pairs[0], pairs.degradation_params(0)
    assert torch.allclose(pairs.degradation.apply(item["target"][None], params)[0], item["input"], atol=1e-5)
    restored = pairs.degradation.invert(item["input"][None], params).clamp(0, 1)[0]
    assert (restored - item["target"]).abs().mean() < 0.2 * (item["input"] - item["target"]).abs().mean()


def _train_pair(dm: AutoCorrectionDataModule, index: int, seed: int) -> dict[str, torch.Tensor]:
    """Training item ``index`` under ``seed``, made into its pair as on the device (a batch of one)."""
    with seeded_torch(seed):
        item = dm.train_set[index]
    batch = {"target": item["target"][None], "degradation": item["degradation"][None]}
    pair = dm.device_batch(batch, training=True)
    return {"input": pair["input"][0], "target": pair["target"][0]}


def test_training_items_are_fresh_draws_under_their_seed(tmp_path):
    dm = _datamodule(_photos(tmp_path / "photos", 20))
    dm.setup("fit")

    one, again, other = _train_pair(dm, 0, 7), _train_pair(dm, 0, 7), _train_pair(dm, 0, 8)
    assert torch.equal(one["input"], again["input"]) and torch.equal(one["target"], again["target"])
    assert not torch.equal(one["input"], other["input"])
    assert one["input"].shape == one["target"].shape == (3, 32, 32)
    # the target is an 8-bit crop (made in uint8) and the input its degradation, drawn in this order
    train_set = dm.train_set
    with seeded_torch(7):
        levels = train_set.crop(load_image(train_set.files[0]).mul(255).round().to(torch.uint8))
        levels = levels.flip(-1) if torch.rand(()) < 0.5 else levels
        expected = train_set.degradation.apply(levels[None], train_set.degradation.sample_params(1))[0]
    assert torch.equal(one["target"], levels.float() / 255) and one["target"].is_contiguous()
    assert torch.equal(one["input"], expected)


def test_a_training_batch_is_degraded_on_the_device_as_each_item_alone(tmp_path):
    """The loader gives 8-bit crops and their parameters; the batch made from them on the device (run.py's
    on_after_batch_transfer, the bare loop of the benchmarks) holds the pairs each item makes alone."""
    dm = _datamodule(_photos(tmp_path / "photos", 20))
    dm.setup("fit")
    torch.manual_seed(3)
    batch = next(iter(dm.train_dataloader()))
    assert batch["target"].dtype == torch.uint8 and batch["degradation"].shape == (4, 7)
    assert "input" not in batch
    pairs = dm.on_after_batch_transfer(dict(batch), 0)
    assert pairs["input"].shape == pairs["target"].shape == (4, 3, 32, 32) and "degradation" not in pairs
    for i in range(4):
        alone = dm.device_batch(
            {"target": batch["target"][i : i + 1], "degradation": batch["degradation"][i : i + 1]}, True
        )
        assert torch.equal(pairs["input"][i], alone["input"][0])
        assert torch.equal(pairs["target"][i], alone["target"][0])
    # the parameters are the degradation's draws, packed and read back exactly
    params = dm.degradation.sample_params(5, torch.Generator().manual_seed(0))
    back = type(params).from_tensor(params.as_tensor())
    assert all(torch.equal(getattr(params, f), getattr(back, f)) for f in params.__dataclass_fields__)


def test_cached_photos_give_the_same_items_and_are_decoded_once(tmp_path, monkeypatch):
    photos = _photos(tmp_path / "photos", 20)
    cached, uncached = _datamodule(photos), _datamodule(photos, cache_mb=0)
    for dm in (cached, uncached):
        dm.setup("fit")
    decoded: list[str] = []
    load = auto_correction_data.load_image_uint8
    monkeypatch.setattr(
        auto_correction_data, "load_image_uint8", lambda path, *a: decoded.append(path.name) or load(path, *a)
    )
    for epoch in range(2):
        for i in range(len(cached.train_set)):
            one, other = _train_pair(cached, i, 100 * epoch + i), _train_pair(uncached, i, 100 * epoch + i)
            assert torch.equal(one["input"], other["input"]) and torch.equal(one["target"], other["target"])
        for i in range(len(cached.val_set)):
            assert torch.equal(cached.val_set[i]["input"], uncached.val_set[i]["input"])
    photos_seen = len(cached.train_set)
    assert len(decoded) == photos_seen * 3  # cached: the first epoch only; uncached: both epochs
    assert len(cached.cache) == photos_seen + len(cached.val_set)
    assert uncached.cache is None


@pytest.mark.shared("data/autocorrect/fivek_pairs")
def test_a_classical_baseline_tests_with_no_checkpoint(make_cfg, tmp_path):
    photos = _photos(tmp_path / "photos", 12)
    run(
        make_cfg(
            "task=auto_correction",
            "model=leave_as_is",
            "stage=test",
            f"data.photo_dirs=[{photos}]",
            "data.val_fraction=0.3",
            "data.test_fraction=0.3",
            output_dir=tmp_path / "run",
        )
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    names = {f"test/{s}/{m}" for s in ("synthetic", "fivek_pairs") for m in ("psnr", "ssim", "delta_e00")}
    assert names <= set(metrics) and not any(k.startswith("train") for k in metrics)
    # "leave as is" scores each real input against its retouched target, as computed here from the files
    stems = sorted(p.stem for p in (FIVEK / "input").glob("*.png"))[:2]  # the smoke runs' test_size=2
    expected = [
        psnr(load_image(FIVEK / "input" / f"{s}.png")[None], load_image(FIVEK / "target" / f"{s}.png")[None])
        for s in stems
    ]
    assert metrics["test/fivek_pairs/psnr"] == pytest.approx(float(torch.cat(expected).mean()), abs=1e-3)


@pytest.mark.shared("data/autocorrect/fivek_dpe_examples", "data/autocorrect/fivek_pairs")
def test_expert_finetuning_holds_out_the_pairs_it_is_tested_on(make_cfg, tmp_path):
    """experiment=autocorrect_expert_finetune: starts from a synthetic-trained net, fits 12 DPE example
    pairs, chooses on 4 others and tests on the 9 fivek_pairs, none of which it saw."""
    base = tmp_path / "base"
    run(make_cfg("task=auto_correction", "model=curves", output_dir=base))
    synthetic_best = json.loads((base / "metrics.json").read_text())["checkpoints"]["best"]
    tuned = tmp_path / "tuned"
    cfg = make_cfg(
        "experiment=autocorrect_expert_finetune",
        "model=curves",
        f"init_weights={synthetic_best}",
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "trainer.precision=32-true",
        tiny=False,
        output_dir=tuned,
    )
    run(cfg)
    result = json.loads((tuned / "metrics.json").read_text())
    assert result["n_test"] == 9 and result["metrics"]["test/fivek_pairs/psnr"] > 15
    split = json.loads(Path(cfg.data.train[0].split_file).read_text())
    dpe = {p.stem for p in (SHARED_DATA / "autocorrect" / "fivek_dpe_examples" / "input").glob("*.png")}
    pairs = {p.stem for p in (FIVEK / "input").glob("*.png")}
    assert (len(split["train"]), len(split["val"])) == (12, 4) and not set(split["train"]) & set(split["val"])
    assert set(split["train"]) | set(split["val"]) == dpe and not dpe & pairs


def _sideways_phone_photo(folder: Path) -> None:
    """``p00.png`` 160 × 90 and ``phone.jpg``: the same pixels stored sideways with EXIF orientation 6, so
    shown turned 90° clockwise, 90 wide and 160 high."""
    _photos(folder, 1, seed=3, size=(90, 160))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(folder / "p00.png").convert("RGB").save(folder / "phone.jpg", exif=exif.tobytes(), quality=95)


def test_predict_writes_the_full_size_photo_and_before_after(make_cfg, tmp_path):
    inputs, out = tmp_path / "mine", tmp_path / "out"
    _sideways_phone_photo(inputs)
    overrides = [f"input={inputs}", f"output={out}", "module.preview_size=64"]
    run(make_cfg("task=auto_correction", "model=gray_world", "stage=predict", *overrides))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["p00.png", "p00_before_after.png", "phone.png", "phone_before_after.png"]
    )
    assert Image.open(out / "p00.png").size == (160, 90)
    assert Image.open(out / "phone.png").size == (90, 160)  # upright, full size
    assert Image.open(out / "p00_before_after.png").size == (128, 36)  # two 64 × 36 halves
    assert Image.open(out / "phone_before_after.png").size == (72, 64)
    corrected, photo = load_image(out / "phone.png"), load_image(inputs / "phone.jpg")
    assert psnr(corrected[None], gray_world(photo[None])) > 45  # the photo corrected, not a copy


def test_a_global_net_predicts_through_the_8bit_transform(tmp_path, single_thread):
    module = hydra.utils.instantiate(compose_config(["task=auto_correction"], tmp_path).module).eval()
    with torch.no_grad():
        module.net.basis[1].copy_(identity_lut(33) ** 0.6 - identity_lut(33))
        module.net.backbone.head.weight.normal_(0.0, 0.002)
        module.net.backbone.head.bias.copy_(torch.tensor([1.0, 1.0, 0.0]))  # w_2 ≈ 1: brighten
    _sideways_phone_photo(tmp_path)
    photo = load_image(tmp_path / "phone.jpg")[None]
    with torch.no_grad():
        out = module.predict_step({"input": photo, "name": ["phone"]}, 0)
    images = out["images"]
    assert images[""].shape == (1, 3, 160, 90) and images["_before_after"].shape == (1, 3, 160, 180)
    expected = from_pil(correct_photo(module.net, to_pil(photo[0])))
    assert torch.equal(images[""][0], expected)
    assert psnr(images[""], photo) < 35 and images[""].mean() > photo.mean()  # brightened


def test_the_8bit_path_matches_the_tensor_path(single_thread):
    torch.manual_seed(0)
    photo = load_image(FIVEK / "input" / "a0535.png") if FIVEK.is_dir() else torch.rand(3, 64, 96)
    x = from_pil(to_pil(photo))[None]
    lut_net = AdaptiveLUT(lut_size=17).eval()
    with torch.no_grad():
        lut_net.basis[1].copy_(identity_lut(17) ** 0.5 - identity_lut(17))  # brighten, by each image's w
        torch.nn.init.normal_(lut_net.backbone.head.weight, 0.0, 0.02)
    curve_net = CurveNet(n_iterations=4, color_matrix=True).eval()
    torch.nn.init.normal_(curve_net.backbone.head.weight, 0.0, 0.02)
    for net in (lut_net, curve_net):
        with torch.no_grad():
            reference = net(x).clamp(0, 1)
        fast = from_pil(correct_photo(net, to_pil(x[0])))[None]
        assert (fast - reference).abs().max() < 4 / 255, type(net).__name__
        assert psnr(fast, reference) > 45, type(net).__name__
        assert psnr(reference, x) < 40  # the nets do change the photo


def test_lut_on_pil_and_in_bands_is_the_lookup():
    photo = torch.rand(3, 37, 53, generator=torch.Generator().manual_seed(1))
    lut = identity_lut(9) ** 1.7
    transform = Lut3dTransform(lut)
    image = to_pil(photo)
    fast = from_pil(transform.apply_pil(image, threads=3))
    assert (fast - transform.apply(from_pil(image)[None])[0]).abs().max() <= 1.01 / 255
    single = image.filter(lut_to_pil_filter(lut))
    assert filter_in_bands(image, lut_to_pil_filter(lut), 3).tobytes() == single.tobytes()
