"""BatchAugmentation: one random draw moves an image and its mask (or a photo pair) together; photometric
transforms touch images only; masks keep their dtype, shape and labels."""

from __future__ import annotations

import kornia.augmentation as K
import pytest
import torch

from operators.batch_augmentation import BatchAugmentation


def image_and_mask(batch: int = 4, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose first channel is the mask (an off-centre box), so alignment can be read off them."""
    mask = torch.zeros(batch, size, size, dtype=torch.long)
    mask[:, 3:11, 5:20] = 1
    image = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 0.2
    image[:, 0] = mask.float()
    return image, mask


def test_geometric_transforms_move_image_and_mask_together():
    torch.manual_seed(0)
    augment = BatchAugmentation(
        [K.RandomHorizontalFlip(p=0.5), K.RandomVerticalFlip(p=0.5), K.RandomRotation(90.0, p=1.0)],
        keys={"input": "image", "target": "mask"},
    )
    image, mask = image_and_mask()
    out = augment({"input": image, "target": mask, "name": ["a", "b", "c", "d"]})
    assert out["target"].dtype == torch.long and out["target"].shape == mask.shape
    assert set(out["target"].unique().tolist()) <= {0, 1}
    assert out["name"] == ["a", "b", "c", "d"]
    moved = (out["target"] != mask).flatten(1).any(1)
    assert moved.any()
    # the image's first channel (bilinear) thresholded is the mask (nearest) up to the box's edge pixels
    agree = ((out["input"][:, 0] > 0.5).long() == out["target"]).float().flatten(1).mean(1)
    assert (agree > 0.95).all(), agree


def test_photometric_transforms_leave_the_mask_alone():
    augment = BatchAugmentation(
        [K.ColorJitter(0.5, 0.5, 0.5, 0.1, p=1.0)], keys={"input": "image", "target": "mask"}
    )
    image, mask = image_and_mask()
    out = augment({"input": image, "target": mask})
    assert torch.equal(out["target"], mask)
    assert not torch.allclose(out["input"], image)
    assert out["input"].min() >= 0 and out["input"].max() <= 1


def test_a_photo_pair_gets_one_draw():
    torch.manual_seed(1)
    augment = BatchAugmentation(
        [K.RandomHorizontalFlip(p=0.5), K.RandomAffine(20.0, p=1.0)],
        keys={"input": "image", "target": "image"},
    )
    photo = torch.rand(3, 3, 16, 16)
    out = augment({"input": photo, "target": photo.clone()})
    torch.testing.assert_close(out["input"], out["target"])
    assert not torch.allclose(out["input"], photo)


def test_no_transforms_is_the_identity_and_bad_keys_fail():
    batch = {"target": torch.rand(2, 1, 8, 8)}
    assert BatchAugmentation([])(batch) is batch
    with pytest.raises(ValueError, match="kind must be one of image, mask"):
        BatchAugmentation([], keys={"target": "label"})
    with pytest.raises(ValueError, match="name no image"):
        BatchAugmentation([], keys={"target": "mask"})
