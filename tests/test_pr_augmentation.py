"""Phase-retrieval augmentation (operators/augmentation.py): shapes, range, seeds, each transform, configs."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import hydra
import pytest
import torch

from datamodules.base import ImageDataModule
from framework.errors import UserError
from operators.augmentation import build_pr_augmentation
from operators.batch_augmentation import BatchAugmentation
from tests.conftest import compose_config

PROBABILITIES = ("hflip_p", "vflip_p", "rotation_p", "scale_p", "sharpness_p", "blur_p", "gamma_p")


def only(name: str, p: float = 1.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The augmentation with every transform off but ``name`` (at probability ``p``), on a target batch."""
    return on_targets(build_pr_augmentation(**{key: (p if key == name else 0.0) for key in PROBABILITIES}))


def on_targets(augment: BatchAugmentation) -> Callable[[torch.Tensor], torch.Tensor]:
    def apply(images: torch.Tensor) -> torch.Tensor:
        return augment({"target": images})["target"]

    apply.transforms = augment.transforms  # type: ignore[attr-defined]
    return apply


@pytest.fixture
def images() -> torch.Tensor:
    torch.manual_seed(123)
    return torch.rand(8, 1, 32, 32)


def test_shape_dtype_and_range(images):
    augment = on_targets(build_pr_augmentation(**dict.fromkeys(PROBABILITIES, 1.0)))
    out = augment(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not out.requires_grad


def test_deterministic_under_manual_seed(images):
    augment = on_targets(build_pr_augmentation())
    torch.manual_seed(0)
    first = augment(images)
    torch.manual_seed(0)
    second = augment(images)
    torch.manual_seed(1)
    third = augment(images)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


@pytest.mark.parametrize("name", PROBABILITIES)
def test_each_transform_changes_images_at_p1(name, images):
    augment = only(name)
    assert len(augment.transforms) == 1
    torch.manual_seed(0)
    out = augment(images)
    changed = (out - images).abs().flatten(1).mean(1) > 1e-3
    assert changed.all(), f"{name}: {changed.tolist()}"


@pytest.mark.parametrize("name", PROBABILITIES)
def test_identity_at_p0(name, images):
    augment = only(name, p=0.0)
    assert len(augment.transforms) == 0
    assert torch.equal(augment(images), images)


def test_flips_are_exact(images):
    assert torch.equal(only("hflip_p")(images), images.flip(-1))
    assert torch.equal(only("vflip_p")(images), images.flip(-2))


def test_probability_is_per_image(images):
    torch.manual_seed(0)
    batch = images.repeat(16, 1, 1, 1)  # 128 images
    flipped = (only("hflip_p", 0.4)(batch) != batch).flatten(1).any(1).float().mean().item()
    assert 0.2 < flipped < 0.6


def test_wrong_settings_fail_with_one_line():
    with pytest.raises(UserError, match=r"augmentation\.blur_p"):
        build_pr_augmentation(blur_p=1.5)
    with pytest.raises(UserError, match=r"augmentation\.gamma_range"):
        build_pr_augmentation(gamma_range=(1.2, 0.8))
    with pytest.raises(UserError, match=r"augmentation\.blur_kernel"):
        build_pr_augmentation(blur_kernel=4)


@pytest.mark.parametrize(("choice", "count"), [("pr_default", 7), ("pr_geometric", 4), ("pr_digits", 2)])
def test_configs_build(choice, count, tmp_path):
    cfg = compose_config([f"augmentation={choice}"], tmp_path)
    augment = hydra.utils.instantiate(cfg.augmentation)
    assert isinstance(augment, BatchAugmentation) and augment.keys == {"target": "image"}
    assert len(augment.transforms) == count
    probabilities = [float(module.p) for module in augment.transforms]
    assert all(0.25 <= p < 0.5 for p in probabilities), probabilities  # the lecture's range


def test_datamodule_augments_targets_in_training_only(images):
    dm = ImageDataModule(
        augmentation=build_pr_augmentation(**{k: float(k == "vflip_p") for k in PROBABILITIES})
    )
    dm.trainer = SimpleNamespace(training=False)  # type: ignore[assignment]
    assert torch.equal(dm.on_after_batch_transfer({"target": images.clone()}, 0)["target"], images)
    dm.trainer = SimpleNamespace(training=True)  # type: ignore[assignment]
    assert torch.equal(dm.on_after_batch_transfer({"target": images.clone()}, 0)["target"], images.flip(-2))
