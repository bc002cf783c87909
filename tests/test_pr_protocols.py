"""Phase retrieval's evaluation protocols (conf/protocol/) keep each data set's size and padding."""

from __future__ import annotations

import pytest

from tests.conftest import compose_config


@pytest.mark.parametrize(
    "data, protocol, size, pad",
    [
        ("fashion_mnist", "prdad", 32, 4),
        ("mnist", "prdad", 32, 8),
        ("eg1800_faces", "prdad", 64, 16),
        ("fashion_mnist", "uelwer", 28, 0),
    ],
)
def test_protocol_keeps_each_data_sets_size_and_padding(data, protocol, size, pad, tmp_path):
    cfg = compose_config(["task=phase_retrieval", f"data={data}", f"protocol={protocol}"], tmp_path)
    assert (cfg.data.image_size, cfg.data.pad, cfg.model.image_size) == (size, pad, size)


def test_the_test_step_can_score_the_validation_images(monkeypatch):
    """``data.test_split=val``: the task's own test step on the validation images (variants are chosen on
    them, then reported on the test images)."""
    import torch

    from datamodules.mnist_family import MNISTFamilyDataModule
    from framework.errors import UserError

    images = {
        train: torch.randint(0, 256, (100 if train else 50, 1, 8, 8), dtype=torch.uint8) for train in (1, 0)
    }
    datamodules = {}
    for split in ("val", "test"):
        dm = MNISTFamilyDataModule("mnist", image_size=8, val_size=40, test_size=30, test_split=split)
        monkeypatch.setattr(dm, "_load", lambda train: images[bool(train)])
        dm.setup("fit")
        dm.setup("test")
        datamodules[split] = dm
    val = datamodules["val"]
    assert len(val.test_set) == 30 and len(val.val_set) == 40
    for i in (0, 29):
        assert torch.equal(val.test_set[i]["target"], val.val_set[i]["target"])
    assert torch.equal(datamodules["test"].test_set[0]["target"], images[False][0].float() / 255)
    with pytest.raises(UserError, match="test_split"):
        MNISTFamilyDataModule("mnist", test_split="train")
