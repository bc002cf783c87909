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
