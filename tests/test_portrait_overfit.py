"""A small PSPNet-MobileNetV2 overfits 8 EG1800 portraits with the lecture's NLL + soft Jaccard: the loss
falls and the IoU rises within 20 steps (64×64 images, one thread, a few seconds). A longer run of the same
set-up (128×128, 300 steps) reaches IoU 0.99; this is its fast version."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from losses.segmentation import SegmentationLoss, split_aux
from metrics.segmentation import iou_per_image
from models.mobilenet_v2 import DEFAULT_TFLITE_FILE
from models.pspnet import pspnet_mobilenet_v2
from tests.conftest import SHARED_DATA

EG1800 = SHARED_DATA / "portrait" / "eg1800"
pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.shared("data/portrait/eg1800/masks", f"weights/{DEFAULT_TFLITE_FILE}"),
]


def _pairs(count: int = 8, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    names = sorted(p.stem for p in (EG1800 / "images").glob("*.jpg"))[:count]
    images, masks = [], []
    for name in names:
        image = (
            Image.open(EG1800 / "images" / f"{name}.jpg").convert("RGB").resize((size, size), Image.BILINEAR)
        )
        mask = Image.open(EG1800 / "masks" / f"{name}.png").resize((size, size), Image.NEAREST)
        images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
        masks.append(torch.from_numpy(np.array(mask) > 127).float()[None])
    return torch.stack(images), torch.stack(masks)


def test_tiny_pspnet_overfits_eight_portraits() -> None:
    torch.manual_seed(0)
    images, masks = _pairs()
    net = pspnet_mobilenet_v2(output_stride=8, head_channels=64, aux_channels=0).train()
    loss_fn = SegmentationLoss(jaccard_weight=1.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses, ious = [], []
    for _ in range(20):
        logits, _ = split_aux(net(images))
        loss = loss_fn(logits, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        # training-mode IoU of the batch just seen (eval-mode batch norm statistics lag after 20 steps)
        ious.append(iou_per_image(torch.sigmoid(logits.detach()), masks).mean().item())
    assert losses[-1] < 0.6 * losses[0], losses
    assert ious[-1] > 0.7 and ious[-1] > ious[0] + 0.2, ious
